package deploy

import (
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

type k8sDoc struct {
	File       string `yaml:"-"`
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int           `yaml:"replicas"`
		Selector map[string]any `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	SecurityContext              struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers     []k8sContainer `yaml:"containers"`
	InitContainers []k8sContainer `yaml:"initContainers"`
	Volumes        []k8sVolume    `yaml:"volumes"`
}

type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string          `yaml:"secretName"`
		Items      []k8sSecretItem `yaml:"items"`
	} `yaml:"secret"`
	EmptyDir *struct {
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports          []k8sPort     `yaml:"ports"`
	LivenessProbe  *k8sHTTPProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sHTTPProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		Privileged               *bool `yaml:"privileged"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sSecretItem struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type k8sPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type k8sHTTPProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// k8sFiles reads every document of deploy/k8s/*.yaml, and the secrets
// each file's header tells the operator to create (name → keys).
func k8sFiles(t *testing.T) (docs []k8sDoc, secrets map[string]map[string][]string) {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	secrets = map[string]map[string][]string{}
	secretRE := regexp.MustCompile(`create secret generic ([a-z0-9-]+)\s`)
	keyRE := regexp.MustCompile(`--from-(?:literal|file)=([a-z0-9-]+)=`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		// The header's commands, continuation lines joined.
		var header strings.Builder
		for line := range strings.Lines(string(b)) {
			if !strings.HasPrefix(line, "#") {
				break
			}
			line = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if cont, ok := strings.CutSuffix(line, "\\"); ok {
				header.WriteString(cont + " ")
			} else {
				header.WriteString(line + "\n")
			}
		}
		secrets[f] = map[string][]string{}
		for line := range strings.Lines(header.String()) {
			if m := secretRE.FindStringSubmatch(line); m != nil {
				for _, k := range keyRE.FindAllStringSubmatch(line, -1) {
					secrets[f][m[1]] = append(secrets[f][m[1]], k[1])
				}
			}
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for {
			var d k8sDoc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			d.File = f
			docs = append(docs, d)
		}
	}
	return docs, secrets
}

func matchLabels(sel map[string]any) map[string]string {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		out[k], _ = v.(string)
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// TestKubernetesManifestsStructure checks every manifest in deploy/k8s:
// selectors select their own pods, Services reach declared ports, every
// Secret, ConfigMap and volume a pod uses exists (or the file's header
// creates it), images have a pinned tag, probes point at declared ports,
// and no container runs as root, privileged or with a writable root.
func TestKubernetesManifestsStructure(t *testing.T) {
	docs, secrets := k8sFiles(t)
	byKind := map[string][]k8sDoc{}
	for _, d := range docs {
		require.NotEmpty(t, d.APIVersion, "%s: a document without apiVersion", d.File)
		require.NotEmpty(t, d.Metadata.Name, "%s: a %s without a name", d.File, d.Kind)
		require.Contains(t, map[string]string{"ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
			"Deployment": "apps/v1", "StatefulSet": "apps/v1", "PodDisruptionBudget": "policy/v1"}, d.Kind, "%s: unexpected kind", d.File)
		require.Equal(t, map[string]string{"ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
			"Deployment": "apps/v1", "StatefulSet": "apps/v1", "PodDisruptionBudget": "policy/v1"}[d.Kind], d.APIVersion, "%s %s", d.File, d.Metadata.Name)
		byKind[d.Kind] = append(byKind[d.Kind], d)
	}
	declared := func(file, kind, name string) bool {
		return slices.ContainsFunc(byKind[kind], func(d k8sDoc) bool { return d.File == file && d.Metadata.Name == name })
	}

	for _, d := range append(slices.Clone(byKind["Deployment"]), byKind["StatefulSet"]...) {
		t.Run(d.File+"/"+d.Metadata.Name, func(t *testing.T) {
			pod := d.Spec.Template.Spec
			require.True(t, subset(matchLabels(d.Spec.Selector), d.Spec.Template.Metadata.Labels), "the selector does not select the pods")
			require.True(t, pod.SecurityContext.RunAsNonRoot)
			require.NotZero(t, pod.SecurityContext.RunAsUser, "uid 0")
			vols := map[string]bool{}
			for _, v := range pod.Volumes {
				vols[v.Name] = true
				switch {
				case v.ConfigMap != nil:
					require.True(t, declared(d.File, "ConfigMap", v.ConfigMap.Name), "volume %s: ConfigMap %s is not in %s", v.Name, v.ConfigMap.Name, d.File)
				case v.PersistentVolumeClaim != nil:
					require.True(t, declared(d.File, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName), "volume %s", v.Name)
				case v.Secret != nil:
					keys, ok := secrets[d.File][v.Secret.SecretName]
					require.True(t, ok, "volume %s: Secret %s is neither in %s nor created by its header", v.Name, v.Secret.SecretName, d.File)
					for _, it := range v.Secret.Items {
						require.Contains(t, keys, it.Key, "volume %s: the header's secret has no key %s", v.Name, it.Key)
					}
				}
			}
			for _, c := range append(slices.Clone(pod.Containers), pod.InitContainers...) {
				image, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
				require.True(t, ok && tag != "" && tag != "latest", "container %s: image %q needs a pinned tag", c.Name, c.Image)
				require.NotEmpty(t, image)
				sc := c.SecurityContext
				require.True(t, sc.Privileged == nil || !*sc.Privileged, "container %s is privileged", c.Name)
				require.NotNil(t, sc.AllowPrivilegeEscalation, "container %s", c.Name)
				require.False(t, *sc.AllowPrivilegeEscalation, "container %s", c.Name)
				require.True(t, sc.ReadOnlyRootFilesystem, "container %s: root filesystem writable", c.Name)
				require.Equal(t, []string{"ALL"}, sc.Capabilities.Drop, "container %s", c.Name)
				require.Empty(t, sc.Capabilities.Add, "container %s", c.Name)
				require.NotEmpty(t, c.Resources.Requests["cpu"], "container %s", c.Name)
				require.NotEmpty(t, c.Resources.Requests["memory"], "container %s", c.Name)
				require.NotEmpty(t, c.Resources.Limits["memory"], "container %s", c.Name)
				for _, m := range c.VolumeMounts {
					require.True(t, vols[m.Name], "container %s mounts undeclared volume %s", c.Name, m.Name)
				}
				for _, e := range c.Env {
					if e.ValueFrom == nil {
						continue
					}
					if r := e.ValueFrom.SecretKeyRef; r != nil {
						require.True(t, declared(d.File, "Secret", r.Name) || slices.Contains(secrets[d.File][r.Name], r.Key),
							"env %s: key %s of Secret %s is neither in %s nor created by its header", e.Name, r.Key, r.Name, d.File)
					}
					if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
						require.True(t, declared(d.File, "ConfigMap", r.Name), "env %s: ConfigMap %s", e.Name, r.Name)
					}
				}
				ports := map[string]bool{}
				for _, p := range c.Ports {
					ports[p.Name] = true
					ports[strconv.Itoa(p.ContainerPort)] = true
				}
				for name, p := range map[string]*k8sHTTPProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					require.NotNil(t, p, "container %s has no %s probe", c.Name, name)
					require.NotNil(t, p.HTTPGet, "container %s: %s probe", c.Name, name)
					require.True(t, ports[portString(p.HTTPGet.Port)], "container %s: %s probe on undeclared port %v", c.Name, name, p.HTTPGet.Port)
				}
				if port := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; port != "" {
					require.True(t, ports[port], "prometheus.io/port %s is not a container port", port)
				}
			}
		})
	}

	for _, s := range append(slices.Clone(byKind["Service"]), byKind["PodDisruptionBudget"]...) {
		sel := matchLabels(s.Spec.Selector)
		var pods []k8sDoc
		for _, d := range append(slices.Clone(byKind["Deployment"]), byKind["StatefulSet"]...) {
			if d.File == s.File && subset(sel, d.Spec.Template.Metadata.Labels) {
				pods = append(pods, d)
			}
		}
		require.NotEmpty(t, pods, "%s: %s %s selects no pods of its file", s.File, s.Kind, s.Metadata.Name)
		for _, p := range s.Spec.Ports {
			found := false
			for _, c := range pods[0].Spec.Template.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == portString(p.TargetPort) || strconv.Itoa(cp.ContainerPort) == portString(p.TargetPort)
				}
			}
			require.True(t, found, "%s: Service %s targets port %v, which its pods do not declare", s.File, s.Metadata.Name, p.TargetPort)
		}
	}
}

func portString(p any) string {
	switch p := p.(type) {
	case int:
		return strconv.Itoa(p)
	case string:
		return p
	}
	return ""
}

// podConfig loads the upwatch.yaml a Deployment mounts from its ConfigMap
// with upwatch's own validation, with stand-ins for the container's env.
func podConfig(t *testing.T, docs []k8sDoc, d k8sDoc) *config.Config {
	t.Helper()
	pod := d.Spec.Template.Spec
	var cmName string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	i := slices.IndexFunc(docs, func(o k8sDoc) bool { return o.File == d.File && o.Kind == "ConfigMap" && o.Metadata.Name == cmName })
	require.GreaterOrEqual(t, i, 0, "%s mounts no ConfigMap of its file", d.Metadata.Name)
	cfg := docs[i].Data["upwatch.yaml"]
	require.NotEmpty(t, cfg)
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil { // from a Secret: a stand-in of the right shape
			env[e.Name] = "stand-in"
			if strings.HasSuffix(e.Name, "_URL") {
				env[e.Name] = "postgres://upwatch:stand-in@postgres:5432/upwatch"
			}
		}
	}
	for _, m := range regexp.MustCompile(`env:([A-Z0-9_]+)`).FindAllStringSubmatch(cfg, -1) {
		require.Contains(t, env, m[1], "the config reads %s, which the container does not set", m[1])
	}
	for k, v := range env { // env: secrets are read from the process environment
		t.Setenv(k, v)
	}
	c, err := config.Parse(strings.NewReader(cfg), d.File, func(k string) string { return env[k] })
	require.NoError(t, err)
	return c
}

func parseQuantity(t *testing.T, q string) int64 {
	t.Helper()
	units := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
	for _, u := range slices.Sorted(maps.Keys(units)) {
		if n, ok := strings.CutSuffix(q, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			require.NoError(t, err, q)
			return v * units[u]
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	require.NoError(t, err, q)
	return v
}

// TestKubernetesReplicatedServer: two or more replicas on a PostgreSQL
// registry, samples in a shared store, one master key for all, ready on
// /readyz.
func TestKubernetesReplicatedServer(t *testing.T) {
	docs, _ := k8sFiles(t)
	i := slices.IndexFunc(docs, func(d k8sDoc) bool { return d.File == "k8s/server-replicated.yaml" && d.Kind == "Deployment" })
	require.GreaterOrEqual(t, i, 0)
	d := docs[i]
	require.NotNil(t, d.Spec.Replicas)
	require.GreaterOrEqual(t, *d.Spec.Replicas, 2)
	c := d.Spec.Template.Spec.Containers[0]
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	cfg := podConfig(t, docs, d)
	require.Equal(t, "postgres", cfg.Registry.Type)
	require.NotEqual(t, "sqlite", cfg.Storage.Type, "the embedded store would split samples between replicas")
	require.Equal(t, config.DefaultLeaseTTL, cfg.Registry.Lease.TTL)
	require.Equal(t, config.DefaultLeaseRenew, cfg.Registry.Lease.Renew)
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		fromSecret[e.Name] = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}
	require.True(t, fromSecret["UPWATCH_MASTER_KEY"], "every replica must seal with the same master key, from a Secret")
	require.True(t, fromSecret["UPWATCH_POSTGRES_URL"], "the registry URL holds a password: from a Secret")
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	require.True(t, mounts["/etc/upwatch"] && mounts["/var/lib/upwatch"], "the image reads /etc/upwatch and writes /var/lib/upwatch")
	require.True(t, slices.ContainsFunc(docs, func(o k8sDoc) bool { return o.File == d.File && o.Kind == "PodDisruptionBudget" }))
	require.True(t, slices.ContainsFunc(docs, func(o k8sDoc) bool { return o.File == d.File && o.Kind == "Service" }))
}

// TestKubernetesAgents: each agent Deployment runs `upwatch agent` for one
// location with its key from a mounted Secret, its data dir on a bounded
// volume, and /metrics on the port its probes use.
func TestKubernetesAgents(t *testing.T) {
	docs, _ := k8sFiles(t)
	var agents []k8sDoc
	for _, d := range docs {
		if d.File == "k8s/agent.yaml" && d.Kind == "Deployment" {
			agents = append(agents, d)
		}
	}
	require.NotEmpty(t, agents)
	for _, d := range agents {
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		require.Equal(t, []string{"/usr/local/bin/upwatch", "agent"}, c.Command, "the image's entrypoint is serve")
		flags := map[string]string{}
		for _, a := range c.Args {
			k, v, ok := strings.Cut(a, "=")
			require.True(t, ok, "write flags as -name=value: %q", a)
			flags[k] = v
		}
		require.Regexp(t, `^https?://`, flags["-server"])
		loc := flags["-location"]
		require.True(t, prober.ValidLocation(loc), "-location %q", loc)
		require.Equal(t, loc, d.Spec.Template.Metadata.Labels["upwatch.io/location"], "one Deployment per location, labelled with it")
		require.Contains(t, d.Metadata.Name, loc)
		require.NotContains(t, flags, "-key", "a key on the command line shows in ps and in the pod spec")

		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
		vol := func(name string) int {
			return slices.IndexFunc(pod.Volumes, func(v k8sVolume) bool { return v.Name == name })
		}
		keyDir, keyFile := filepath.Split(flags["-key-file"])
		kv := vol(mounts[strings.TrimSuffix(keyDir, "/")])
		require.GreaterOrEqual(t, kv, 0, "-key-file %s is not on a mounted volume", flags["-key-file"])
		require.NotNil(t, pod.Volumes[kv].Secret, "-key-file must come from a Secret")
		require.True(t, slices.ContainsFunc(pod.Volumes[kv].Secret.Items, func(it k8sSecretItem) bool { return it.Path == keyFile }),
			"the Secret volume has no item %s", keyFile)

		require.Equal(t, "/var/lib/upwatch", flags["-data-dir"], "the image's nonroot user owns /var/lib/upwatch")
		dv := vol(mounts[flags["-data-dir"]])
		require.GreaterOrEqual(t, dv, 0, "-data-dir is not a volume (the root filesystem is read-only)")
		if ed := pod.Volumes[dv].EmptyDir; ed != nil {
			require.NotEmpty(t, ed.SizeLimit, "bound the spool's emptyDir")
			spool, err := strconv.ParseInt(flags["-spool-max-bytes"], 10, 64)
			require.NoError(t, err, "-spool-max-bytes must be set below the emptyDir's sizeLimit")
			require.Less(t, spool, parseQuantity(t, ed.SizeLimit), "-spool-max-bytes must stay below the volume")
		}

		_, port, ok := strings.Cut(flags["-listen"], ":")
		require.True(t, ok, "-listen serves /metrics for the probes")
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(c.Ports, func(cp k8sPort) bool { return cp.ContainerPort == p }), "-listen port %d is not declared", p)
		for _, pr := range []*k8sHTTPProbe{c.LivenessProbe, c.ReadinessProbe} {
			require.Equal(t, "/metrics", pr.HTTPGet.Path, "the agent serves /metrics only")
		}
		require.NotNil(t, pod.AutomountServiceAccountToken)
		require.False(t, *pod.AutomountServiceAccountToken, "the agent never talks to the Kubernetes API")
	}
}
