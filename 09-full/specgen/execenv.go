//go:build linux

package specgen

import (
	"os"
	"strings"
)

// ExecEnv is `berth exec`'s -e and --env-file, as run reads them: the env
// files first, then each -e; NAME alone takes the host's value (and is
// dropped if the host has none).
func ExecEnv(env, envFiles []string) ([]string, error) {
	var all []string
	for _, f := range envFiles {
		kvs, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, kvs...)
	}
	all = append(all, env...)
	var out []string
	for _, kv := range all {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		if k != "" {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}
