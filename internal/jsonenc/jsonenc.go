// Package jsonenc appends JSON to byte slices for the two hot outputs, the
// engine's patch and the webhook's response. encoding/json re-validates and
// compacts every Marshaler's output at each level, which costs more than
// computing what is encoded.
package jsonenc

import "encoding/json"

// plain marks the bytes a JSON string may hold as they are. encoding/json
// also escapes <, > and & (HTML safety); so do we, so both encoders agree
// byte for byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// AppendString appends s as a JSON string. Anything but plain printable
// ASCII goes through encoding/json, so escaping is always its.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
