package cluster

import "netchat/internal/chat"

// SetDropHook makes the node lose the events f returns true for, as a log
// that drops a publish while the connection stays up.
func (n *Node) SetDropHook(f func(*chat.Replicated) bool) { n.dropHook.Store(&f) }

// ReleasesQueued is how many claims wait to be given back.
func (n *Node) ReleasesQueued() int { return n.releasesLeft() }
