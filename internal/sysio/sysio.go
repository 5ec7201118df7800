// Package sysio is socket I/O without the scheduler's bookkeeping: the
// read, write and writev system calls on non-blocking sockets, made as raw
// system calls, and a net.Conn whose reads and writes are made the same
// way (for the cluster's NATS connection).
//
// Why raw. A system call made through syscall.Syscall tells the Go
// scheduler that the goroutine may block (entersyscall): the runtime's
// monitor thread (sysmon), if it was asleep because the process was idle,
// is woken and goes back to polling every 20 µs, and it hands the P to
// another thread when a call lasts longer than that. Calls on a
// non-blocking socket never block: they copy what fits and return
// EAGAIN otherwise, in microseconds. For them that bookkeeping buys
// nothing, and on a virtual machine every wake-up of sysmon is a costly
// context switch: 7–11% of a busy node's CPU, and about 10% more
// deliveries per CPU-second without it in a server that writes thousands
// of sockets a second (docs/BENCHMARKS.md). The raw calls are made only
// on Linux, where they were measured; elsewhere the same functions use
// the ordinary calls.
package sysio
