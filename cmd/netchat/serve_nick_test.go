package main

import "testing"

// TestServeLookAlikeNicknames: over real sockets, a nickname that only
// looks like one online (Cyrillic letters, digits for letters) is refused
// as taken, exactly like a case variant, and so is a look-alike of the
// reserved name; a different nickname still joins.
func TestServeLookAlikeNicknames(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testServeOptions())
	alice := chatJoin(t, addr["chat"], "alice")
	paypal := chatJoin(t, addr["chat"], "paypal")

	u := dialUser(t, addr["chat"])
	for _, tt := range []struct{ try, want string }{
		{"аlice", "! nickname taken: аlice"},   // Cyrillic а
		{"ALICE", "! nickname taken: ALICE"},   // the case variant, for comparison
		{"раураl", "! nickname taken: раураl"}, // Cyrillic р, а, у
		{"ѕerver", `! invalid nickname: "server" is reserved`},
	} {
		u.send(tt.try)
		u.expect(tt.want)
	}
	u.nick = "alicia"
	u.send("alicia")
	u.expectPrefix("* Welcome, alicia! 3 users online.")

	// A rename into a look-alike is refused the same way, and /who shows
	// no impostor.
	u.send("/nick раураl")
	u.expect("! nickname taken: раураl")
	u.send("/who")
	u.expect("* 3 online: alice, alicia, paypal")
	alice.c.Close()
	paypal.c.Close()
}
