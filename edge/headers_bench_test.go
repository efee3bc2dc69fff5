package edge

import "testing"

// BenchmarkHitPathHeaders is BenchmarkHitPathCPU with response header rules on every hit:
// three constant fields (serialised once per ruling and object) and one {cache_status}
// (expanded per hit). Its difference from BenchmarkHitPathCPU is their cost.
func BenchmarkHitPathHeaders(b *testing.B) {
	benchHitPath(b, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/", RuleHeaders: RuleHeaders{ResponseHeaders: &HeaderRules{
			Set: map[string]HeaderValues{
				"Strict-Transport-Security":   {"max-age=63072000; includeSubDomains"},
				"X-Frame-Options":             {"DENY"},
				"Access-Control-Allow-Origin": {"*"},
				"X-Cache":                     {"{cache_status}"},
			},
		}}}}
	}, cmpPath1K)
}
