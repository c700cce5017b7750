package config

// Debug holds diagnostics that are off by default.
type Debug struct {
	// PProf serves Go's runtime profiles under /debug/pprof/ to admin API
	// keys of tenant "default". Profiles cost CPU while they run and show
	// the process's internals, so they are opt-in.
	PProf bool `yaml:"pprof"`
}
