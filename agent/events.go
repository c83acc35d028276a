package agent

import (
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// event is what the watchers send the loop.
type event interface{ isEvent() }

type (
	// pointerEvent: the store points at this revision.
	pointerEvent store.Pointer
	// storeEvent: a ping of the store answered (err nil) or not.
	storeEvent struct{ err error }
	// nodesEvent: the live nodes changed.
	nodesEvent map[string]status.NodeStatus
	// healthEvent: the controller's origin and edge verdicts changed.
	healthEvent map[string]status.OriginHealth
	// invalidationsEvent: every invalidation with who completed it.
	invalidationsEvent map[string]*store.InvalidationState
	// pingEvent: Alive asks; the loop closes done.
	pingEvent struct{ done chan struct{} }
)

func (pointerEvent) isEvent()       {}
func (storeEvent) isEvent()         {}
func (nodesEvent) isEvent()         {}
func (healthEvent) isEvent()        {}
func (invalidationsEvent) isEvent() {}
func (pingEvent) isEvent()          {}
