package server

import (
	"bufio"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"netchat/internal/chat"
)

// TestStoppedInputLeavesEpollSet: when a session's input stops (it ended),
// its socket leaves the poller's epoll set at once, whether its input was
// running or paused. Left in the level-triggered set, a socket with unread
// input would wake the poller in a loop until the socket is closed, which
// can be seconds later while its last output lingers.
func TestStoppedInputLeavesEpollSet(t *testing.T) {
	t.Parallel()
	for _, paused := range []bool{false, true} {
		srv := New(chat.NewRoom(chat.Config{}), Defaults())
		snc, cnc := loopbackPair(t)
		c, sess := admitConn(t, srv, snc)
		if c.poll == nil {
			t.Skip("no epoll poller on this system")
		}
		c.start()
		if _, err := bufio.NewReader(cnc).ReadString('\n'); err != nil {
			t.Fatal(err) // the greeting
		}
		sess.inMu.Lock()
		if paused {
			c.pauseInput()
		}
		c.stopInput()
		sess.inMu.Unlock()
		// Input the server will never read: the socket stays readable.
		if _, err := cnc.Write([]byte("unread\n")); err != nil {
			t.Fatal(err)
		}
		var cerr error
		if err := c.rc.Control(func(fd uintptr) {
			cerr = unix.EpollCtl(c.poll.set.FD(), unix.EPOLL_CTL_DEL, int(fd), nil)
		}); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(cerr, unix.ENOENT) {
			t.Errorf("paused=%v: the socket is still in the epoll set after its input stopped (EPOLL_CTL_DEL: %v)", paused, cerr)
		}
	}
}
