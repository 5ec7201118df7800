// Package udp holds netchat's datagram tools: an RFC 862 echo server that is
// safe to expose (no reflection loops, per-source rate limit), a sender that
// prints replies with the sender's address information (Node's rinfo), and
// a listener that prints everything it receives.
package udp
