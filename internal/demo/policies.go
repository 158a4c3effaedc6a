package demo

import "io/fs"

// Policies returns the demo's fictitious SPIFs by file name ("usa.xml",
// "pak.xml", "ind.xml"), for tests that build node homes like the demo's.
func Policies() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(policies, "policies")
	for _, e := range entries {
		if b, err := policies.ReadFile("policies/" + e.Name()); err == nil {
			out[e.Name()] = b
		}
	}
	return out
}
