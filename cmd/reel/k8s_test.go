package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests of samples/k8s, checked offline (no cluster runs here): every
// document decodes strictly into its typed k8s.io/api object (an unknown or misspelt field
// fails), everything referenced exists and is wired right, the ConfigMap's reel config loads
// with the edge's own loader and names the headless Services by DNS, the containers' args are
// flags reel accepts — and each container's args, config, token and environment start the real
// binary, which answers its probes.

// kustomization is the part of a kustomize Kustomization samples/k8s uses (decoded strictly:
// another key fails the test until it is added here and checked).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// k8sObjects are the decoded documents, by kind and name.
type k8sObjects struct {
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	pvcs         map[string]*corev1.PersistentVolumeClaim
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	metas        []metav1.ObjectMeta // every object's, for the namespace check
}

// decodeK8s decodes one YAML document into the typed object its apiVersion and kind name,
// strictly.
func (o *k8sObjects) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(v any) error { return strictDecode(doc, v) }
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		var v corev1.Namespace
		if err := strict(&v); err != nil {
			return err
		}
		o.namespaces[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "v1 ConfigMap":
		var v corev1.ConfigMap
		if err := strict(&v); err != nil {
			return err
		}
		o.configMaps[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "v1 Secret":
		var v corev1.Secret
		if err := strict(&v); err != nil {
			return err
		}
		o.secrets[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "v1 Service":
		var v corev1.Service
		if err := strict(&v); err != nil {
			return err
		}
		o.services[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "v1 PersistentVolumeClaim":
		var v corev1.PersistentVolumeClaim
		if err := strict(&v); err != nil {
			return err
		}
		o.pvcs[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "apps/v1 Deployment":
		var v appsv1.Deployment
		if err := strict(&v); err != nil {
			return err
		}
		o.deployments[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	case "apps/v1 StatefulSet":
		var v appsv1.StatefulSet
		if err := strict(&v); err != nil {
			return err
		}
		o.statefulSets[v.Name], o.metas = &v, append(o.metas, v.ObjectMeta)
	default:
		return fmt.Errorf("unexpected object %s %s: add it to the test's decoder and checks", tm.APIVersion, tm.Kind)
	}
	return nil
}

// strictDecode decodes a YAML document as the API server does: field names matched exactly
// (encoding/json, under sigs.k8s.io/yaml's UnmarshalStrict, matches them ignoring case: it
// took "livenessprobe" for livenessProbe), unknown and duplicate fields refused.
func strictDecode(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

var yamlDocSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadK8s reads the kustomization in dir and decodes every resource it lists.
func loadK8s(t *testing.T, dir string) (kustomization, *k8sObjects) {
	t.Helper()
	var k kustomization
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := strictDecode(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace == "" || len(k.Images) != 1 {
		t.Fatalf("kustomization.yaml: %+v", k)
	}
	// Every manifest in the folder is a resource, and every resource is there.
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, files %v", got, want)
	}
	o := &k8sObjects{namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{}}
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocSep.Split(string(b), -1) {
			var probe map[string]any
			if err := yaml.Unmarshal([]byte(doc), &probe); err != nil {
				t.Fatalf("%s document %d: %v", r, i+1, err)
			}
			if probe == nil {
				continue // comments only
			}
			if err := o.decode([]byte(doc)); err != nil {
				t.Fatalf("%s document %d: %v", r, i+1, err)
			}
		}
	}
	return k, o
}

// TestK8sStrictDecoding: the decoder refuses an unknown field (the manifests' checks rest on
// it) and a document of a kind the checks don't know.
func TestK8sStrictDecoding(t *testing.T) {
	o := &k8sObjects{deployments: map[string]*appsv1.Deployment{}}
	good := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n"
	if err := o.decode([]byte(good)); err != nil || o.deployments["x"] == nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for _, bad := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b, livenessprobe: {}}]\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if err := o.decode([]byte(bad)); err == nil {
			t.Errorf("decoded without error:\n%s", bad)
		}
	}
}

// reelFlags are the flags `reel <cmd>` takes, from its -h (which PrintDefaults writes): name
// → whether it takes a value.
func reelFlags(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	_, stdout, stderr := runReel(t, cmd, "-h")
	flags := map[string]bool{}
	re := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)( \S+)?$`)
	for _, m := range re.FindAllStringSubmatch(stdout+stderr, -1) {
		flags[m[1]] = m[2] != ""
	}
	if len(flags) < 3 {
		t.Fatalf("reel %s -h lists %d flags:\n%s%s", cmd, len(flags), stdout, stderr)
	}
	return flags
}

// parseArgs checks args against flags and returns the values by flag name (the last one
// given).
func parseArgs(t *testing.T, what string, args []string, flags map[string]bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: argument %q is not a flag (reel takes none after its flags)", what, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, ok := flags[name]
		switch {
		case !ok:
			t.Errorf("%s: flag %s is not one reel accepts", what, a)
		case takes && !hasVal:
			if i+1 >= len(args) {
				t.Errorf("%s: flag %s needs a value", what, a)
				continue
			}
			i++
			out[name] = args[i]
		case hasVal:
			out[name] = val
		default:
			out[name] = "true"
		}
	}
	return out
}

// workload is a Deployment's or StatefulSet's pod template, with what it is.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim // a StatefulSet's volumeClaimTemplates
}

func portOf(t *testing.T, what, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: address %q has no port", what, addr)
	}
	return int32(n)
}

// containerPort is the port c calls name (or the number name is).
func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// selects reports whether svc's selector picks w's pods.
func selects(svc *corev1.Service, w workload) bool {
	return len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.pod.Labels))
}

// edgeNode is a container running `reel edge`, with its effective config.
type edgeNode struct {
	w    workload
	c    corev1.Container
	args map[string]string
	cfg  edge.Config
	yaml string // the config file's text
}

// TestK8sManifests checks samples/k8s (see the comment at the top of this file).
func TestK8sManifests(t *testing.T) {
	t.Parallel() // starts real binaries: see parallel_test.go
	dir := sample("k8s")
	k, o := loadK8s(t, dir)
	ns := k.Namespace
	if o.namespaces[ns] == nil {
		t.Errorf("no Namespace %s", ns)
	}
	for _, m := range o.metas {
		if m.Namespace != ns && !(m.Namespace == "" && o.namespaces[m.Name] != nil) {
			t.Errorf("%s is in namespace %q, want %q (kustomization.yaml)", m.Name, m.Namespace, ns)
		}
	}
	var ws []workload
	for _, d := range o.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template, nil})
	}
	for _, s := range o.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template, s.Spec.VolumeClaimTemplates})
		svc := o.services[s.Spec.ServiceName]
		if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !selects(svc, ws[len(ws)-1]) {
			t.Errorf("StatefulSet %s: serviceName %q must be a headless Service selecting its pods", s.Name, s.Spec.ServiceName)
		}
	}
	slices.SortFunc(ws, func(a, b workload) int { return strings.Compare(a.name, b.name) })
	edgeFlags, originFlags := reelFlags(t, "edge"), reelFlags(t, "origin")
	var edges []edgeNode
	origins := 0
	for _, w := range ws {
		what := w.kind + " " + w.name
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.pod.Labels)) {
			t.Errorf("%s: selector %v does not match its pods' labels %v", what, w.selector, w.pod.Labels)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range w.pod.Spec.Volumes {
			volumes[v.Name] = v
			switch {
			case v.ConfigMap != nil && o.configMaps[v.ConfigMap.Name] == nil:
				t.Errorf("%s: volume %s names ConfigMap %s, which is not there", what, v.Name, v.ConfigMap.Name)
			case v.Secret != nil && o.secrets[v.Secret.SecretName] == nil:
				t.Errorf("%s: volume %s names Secret %s, which is not there", what, v.Name, v.Secret.SecretName)
			case v.PersistentVolumeClaim != nil && o.pvcs[v.PersistentVolumeClaim.ClaimName] == nil:
				t.Errorf("%s: volume %s names claim %s, which is not there", what, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		claims := map[string]corev1.PersistentVolumeClaim{}
		for _, c := range w.claims {
			claims[c.Name] = c
		}
		if len(w.pod.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want reel alone", what, len(w.pod.Spec.Containers))
		}
		c := w.pod.Spec.Containers[0]
		if c.Image != k.Images[0].Name {
			t.Errorf("%s: image %q, want %q (kustomization.yaml's images rewrite it)", what, c.Image, k.Images[0].Name)
		}
		// mountOf is the volume path p is in, and what is mounted there.
		mountOf := func(p string) (corev1.VolumeMount, bool) {
			for _, m := range c.VolumeMounts {
				if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
					return m, true
				}
			}
			return corev1.VolumeMount{}, false
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				if _, ok := claims[m.Name]; !ok {
					t.Errorf("%s: mount %s names no volume", what, m.Name)
				}
			}
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				s := o.secrets[r.SecretKeyRef.Name]
				if s == nil {
					t.Errorf("%s: env %s from Secret %s, which is not there", what, e.Name, r.SecretKeyRef.Name)
				} else if _, ok := s.StringData[r.SecretKeyRef.Key]; !ok {
					if _, ok := s.Data[r.SecretKeyRef.Key]; !ok {
						t.Errorf("%s: env %s from key %s that Secret %s lacks", what, e.Name, r.SecretKeyRef.Key, s.Name)
					}
				}
			}
		}
		// Probes on ports the container declares.
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil {
				t.Errorf("%s: a readiness and a liveness probe, please", what)
				continue
			}
			port := intstr.IntOrString{}
			switch {
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port
			}
			if _, ok := containerPort(c, port); !ok {
				t.Errorf("%s: probe on port %s, which the container doesn't declare", what, port.String())
			}
		}
		// Memory: requests within limits; GOMEMLIMIT, if set, below the limit.
		memLimit := c.Resources.Limits.Memory()
		if memLimit.IsZero() || c.Resources.Requests.Memory().Cmp(*memLimit) > 0 || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: resources %+v: want cpu and memory requests, a memory limit at least the request", what, c.Resources)
		}
		if e, ok := env["GOMEMLIMIT"]; ok {
			var goLimit edge.Size
			if err := goLimit.Set(e.Value); err != nil || int64(goLimit) >= memLimit.Value()*9/10 {
				t.Errorf("%s: GOMEMLIMIT %s must leave the container's %s limit a tenth for what the Go heap doesn't count", what, e.Value, memLimit)
			}
		}

		switch {
		case len(c.Args) > 0 && c.Args[0] == "origin":
			origins++
			args := parseArgs(t, what, c.Args[1:], originFlags)
			if m, ok := mountOf(args["dir"]); !ok || !m.ReadOnly {
				t.Errorf("%s: --dir %s is not on a read-only volume", what, args["dir"])
			}
			listen, ok := containerPort(c, intstr.FromString("http"))
			if !ok || portOf(t, what, args["listen"]) != listen {
				t.Errorf("%s: --listen %s, but port http is %d", what, args["listen"], listen)
			}
		case len(c.Args) > 0 && c.Args[0] == "edge":
			args := parseArgs(t, what, c.Args[1:], edgeFlags)
			m, ok := mountOf(args["config"])
			if !ok || volumes[m.Name].ConfigMap == nil {
				t.Fatalf("%s: --config %s is not on a ConfigMap volume", what, args["config"])
			}
			text, ok := o.configMaps[volumes[m.Name].ConfigMap.Name].Data[strings.TrimPrefix(args["config"], m.MountPath+"/")]
			if !ok {
				t.Fatalf("%s: --config %s: no such key in ConfigMap %s", what, args["config"], volumes[m.Name].ConfigMap.Name)
			}
			f := writeConfig(t, "edge.yaml", text)
			cfg, err := edge.LoadConfig(f) // what `reel edge --config` does
			if err != nil {
				t.Fatalf("%s: the config in the ConfigMap: %v", what, err)
			}
			for flag, dst := range map[string]*edge.Size{"memory": &cfg.Memory, "disk": &cfg.Disk} {
				if v, ok := args[flag]; ok {
					if err := dst.Set(v); err != nil {
						t.Fatalf("%s: --%s %s: %v", what, flag, v, err)
					}
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("%s: the config in the ConfigMap: %v", what, err)
			}
			if args["name"] != "$(POD_NAME)" || env["POD_NAME"].ValueFrom == nil || env["POD_NAME"].ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("%s: --name %s: want $(POD_NAME), the pod's name from the downward API (one name per node)", what, args["name"])
			}
			if e := env["REEL_ADMIN_TOKEN"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: REEL_ADMIN_TOKEN must come from a Secret", what)
			}
			// The listeners the probes and the scrape reach.
			if p, _ := containerPort(c, intstr.FromString("http")); p != portOf(t, what, cfg.Listen) {
				t.Errorf("%s: listen %s, port http %d", what, cfg.Listen, p)
			}
			if p, _ := containerPort(c, intstr.FromString("admin")); p != portOf(t, what, cfg.Admin) {
				t.Errorf("%s: admin %s, port admin %d", what, cfg.Admin, p)
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p.HTTPGet == nil || p.HTTPGet.Path != edge.HealthPath || p.HTTPGet.Port.String() != "http" {
					t.Errorf("%s: probe %+v, want GET %s on port http", what, p.ProbeHandler, edge.HealthPath)
				}
			}
			a := w.pod.Annotations
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(int(portOf(t, what, cfg.Admin))) {
				t.Errorf("%s: prometheus.io annotations %v: want the admin port's /metrics", what, a)
			}
			// Memory: reel sets the Go memory limit from --memory (GoMemoryLimit) and follows
			// the disk index; GOMEMLIMIT would freeze it. The container holds that, the binary
			// (about 18 MiB), the disk index at 128 KiB objects (1.5 KiB each) and a tenth more.
			if _, ok := env["GOMEMLIMIT"]; ok {
				t.Errorf("%s: GOMEMLIMIT set: reel derives the Go memory limit from --memory", what)
			}
			need := edge.GoMemoryLimit(cfg) + 18<<20
			if cfg.CacheDir != "" {
				need += int64(cfg.Disk) / (128 << 10) * 1536
				m, ok := mountOf(cfg.CacheDir)
				if c, isClaim := claims[m.Name]; !ok || !isClaim {
					t.Errorf("%s: cache_dir %s is not on a volume claim", what, cfg.CacheDir)
				} else if st := c.Spec.Resources.Requests[corev1.ResourceStorage]; st.Value() < int64(cfg.Disk) {
					t.Errorf("%s: --disk %d bytes on a %s volume", what, cfg.Disk, st.String())
				}
			}
			need += need / 10
			if memLimit.Value() < need {
				t.Errorf("%s: memory limit %s; --memory %d needs %s", what, memLimit, cfg.Memory, resource.NewQuantity(need, resource.BinarySI))
			}
			t.Logf("%s: --memory %s → Go memory limit %d MiB, container limit %s (%d MiB needed)", what, args["memory"], edge.GoMemoryLimit(cfg)>>20, memLimit, need>>20)
			edges = append(edges, edgeNode{w, c, args, cfg, text})
		default:
			t.Errorf("%s: args %v: want reel edge or reel origin", what, c.Args)
		}
	}
	if origins != 1 || len(edges) != 2 {
		t.Fatalf("%d origins and %d edge workloads, want an origin, an edge Deployment and a shield StatefulSet", origins, len(edges))
	}

	// Services: each selects a workload whose container has its target ports.
	for _, svc := range o.services {
		found := false
		for _, w := range ws {
			if !selects(svc, w) {
				continue
			}
			found = true
			for _, p := range svc.Spec.Ports {
				if _, ok := containerPort(w.pod.Spec.Containers[0], p.TargetPort); !ok {
					t.Errorf("Service %s: port %s targets %s, which %s %s doesn't declare", svc.Name, p.Name, p.TargetPort.String(), w.kind, w.name)
				}
			}
		}
		if !found {
			t.Errorf("Service %s selects no pods", svc.Name)
		}
	}

	// srvService is the headless Service an SRV name _port._tcp.svc.ns.svc.cluster.local names,
	// and its port.
	srvService := func(what, name string) (*corev1.Service, corev1.ServicePort) {
		t.Helper()
		parts := strings.SplitN(name, ".", 4)
		if len(parts) != 4 || parts[1] != "_tcp" || parts[3] != ns+".svc.cluster.local" {
			t.Fatalf("%s: %q is not _port._tcp.service.%s.svc.cluster.local", what, name, ns)
		}
		svc := o.services[parts[2]]
		if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Fatalf("%s: %q: no headless Service %s", what, name, parts[2])
		}
		for _, p := range svc.Spec.Ports {
			if "_"+p.Name == parts[0] && p.Protocol != corev1.ProtocolUDP {
				return svc, p
			}
		}
		t.Fatalf("%s: %q: Service %s has no TCP port named %s", what, name, svc.Name, strings.TrimPrefix(parts[0], "_"))
		return nil, corev1.ServicePort{}
	}
	var shields, children []edgeNode
	for _, n := range edges {
		if n.cfg.Parents.DNS != "" {
			children = append(children, n)
		} else {
			shields = append(shields, n)
		}
	}
	if len(children) != 1 || len(shields) != 1 || shields[0].w.kind != "StatefulSet" {
		t.Fatalf("want one edge workload with parents by DNS and one shield StatefulSet without parents")
	}
	for _, n := range edges {
		what := n.w.kind + " " + n.w.name
		// The cluster purge reaches every edge and shield, at their admin ports.
		svc, port := srvService(what+" cluster.dns", n.cfg.Cluster.DNS)
		for _, m := range edges {
			if !selects(svc, m.w) {
				t.Errorf("%s: cluster.dns's Service %s doesn't select %s %s's pods: purges would miss them", what, svc.Name, m.w.kind, m.w.name)
			} else if p, _ := containerPort(m.c, port.TargetPort); p != portOf(t, what, m.cfg.Admin) {
				t.Errorf("%s: cluster.dns's port %s reaches %d on %s, whose admin API is %s", what, port.Name, p, m.w.name, m.cfg.Admin)
			}
		}
		for _, org := range n.cfg.Origins {
			u, err := url.Parse(org.URL)
			name, _, _ := strings.Cut(u.Hostname(), ".")
			svc := o.services[name]
			ok := err == nil && svc != nil && u.Hostname() == name+"."+ns+".svc.cluster.local"
			if ok {
				ok = slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == u.Port() })
			}
			if !ok {
				t.Errorf("%s: origin %s is not a port of a Service of namespace %s", what, org.URL, ns)
			}
		}
	}
	child := children[0]
	svc, port := srvService("parents.dns", child.cfg.Parents.DNS)
	if !selects(svc, shields[0].w) || selects(svc, child.w) || svc.Spec.PublishNotReadyAddresses {
		t.Errorf("parents.dns: Service %s must list the ready shields, and only them", svc.Name)
	}
	if p, _ := containerPort(shields[0].c, port.TargetPort); p != portOf(t, "shield", shields[0].cfg.Listen) {
		t.Errorf("parents.dns: port %s reaches the shields' %d, but they listen on %s", port.Name, p, shields[0].cfg.Listen)
	}
	if o.statefulSets[shields[0].w.name].Spec.ServiceName != svc.Name {
		t.Errorf("parents.dns names Service %s; the shield StatefulSet's serviceName must be it (stable SRV targets)", svc.Name)
	}

	// The Prometheus job scrapes the annotated pods of the namespace with the token from a file,
	// and the image runs reel as the user the pods run as.
	var scrape struct {
		ScrapeConfigs []struct {
			Authorization struct {
				Type            string `json:"type"`
				CredentialsFile string `json:"credentials_file"`
			} `json:"authorization"`
			SD []struct {
				Role       string `json:"role"`
				Namespaces struct {
					Names []string `json:"names"`
				} `json:"namespaces"`
			} `json:"kubernetes_sd_configs"`
			Relabel []struct {
				SourceLabels []string `json:"source_labels"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "prometheus-scrape.yml")); err != nil || yaml.Unmarshal(b, &scrape) != nil || len(scrape.ScrapeConfigs) != 1 {
		t.Errorf("prometheus-scrape.yml: %v", err)
	} else {
		j := scrape.ScrapeConfigs[0]
		var sources []string
		for _, r := range j.Relabel {
			sources = append(sources, r.SourceLabels...)
		}
		if j.Authorization.Type != "Bearer" || j.Authorization.CredentialsFile == "" || len(j.SD) != 1 || j.SD[0].Role != "pod" ||
			!slices.Equal(j.SD[0].Namespaces.Names, []string{ns}) || !slices.Contains(sources, "__meta_kubernetes_pod_annotation_prometheus_io_port") ||
			!slices.Contains(sources, "__meta_kubernetes_pod_annotation_prometheus_io_scrape") {
			t.Errorf("prometheus-scrape.yml: want a bearer token file and the annotated pods of namespace %s: %+v", ns, j)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "Dockerfile")); err != nil || !strings.Contains(string(b), "go build -trimpath -o /reel ./cmd/reel") || !strings.Contains(string(b), "USER 65532:65532") {
		t.Errorf("Dockerfile: want reel built from ./cmd/reel, run as 65532 (%v)", err)
	}
	for _, w := range ws {
		if sc := w.pod.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s %s: want runAsNonRoot as user 65532 (the image's)", w.kind, w.name)
		}
	}

	// The real binary, each container's args, config, token and environment: it starts and
	// answers its probes (and /metrics with the token only). The listeners move to loopback
	// ports and the cache folder to a temporary one; DNS names of the cluster don't resolve
	// here, which an edge survives (no parents yet: straight to the origin).
	bin := buildReel(t)
	for _, w := range ws {
		runContainer(t, bin, o, w)
	}
}

// runContainer runs w's container with the real binary and checks its probes answer.
func runContainer(t *testing.T, bin string, o *k8sObjects, w workload) {
	t.Helper()
	c := w.pod.Spec.Containers[0]
	root := t.TempDir()
	env := append(os.Environ(), "POD_NAME="+w.name+"-0")
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			s := o.secrets[e.ValueFrom.SecretKeyRef.Name]
			env = append(env, e.Name+"="+s.StringData[e.ValueFrom.SecretKeyRef.Key])
		}
	}
	// The volumes, under root: ConfigMaps written out, the others empty folders.
	for _, m := range c.VolumeMounts {
		d := filepath.Join(root, m.MountPath)
		os.MkdirAll(d, 0o755)
		for _, v := range w.pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				for k, text := range o.configMaps[v.ConfigMap.Name].Data {
					os.WriteFile(filepath.Join(d, k), []byte(text), 0o644)
				}
			}
		}
	}
	var args []string
	for i, a := range c.Args {
		a = strings.ReplaceAll(a, "$(POD_NAME)", w.name+"-0")
		if i > 0 && path.IsAbs(a) && (c.Args[i-1] == "--config" || c.Args[i-1] == "--dir") {
			a = filepath.Join(root, a)
		}
		args = append(args, a)
	}
	listen := freeAddr(t)
	args = append(args, "--listen", listen)
	var admin string
	if c.Args[0] == "edge" {
		admin = freeAddr(t)
		args = append(args, "--admin", admin, "--cache-dir", filepath.Join(root, "var/cache/reel"), "--disk", "64MiB")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	runUntilServing(t, w.name, cmd)
	client := &http.Client{Timeout: 10 * time.Second}
	if c.Args[0] == "origin" {
		conn, err := net.DialTimeout("tcp", listen, 5*time.Second)
		if err != nil {
			t.Errorf("%s: tcp probe: %v", w.name, err)
		} else {
			conn.Close()
		}
		return
	}
	probe := func(u, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: GET %s: %v", w.name, u, err)
			return 0, ""
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := probe("http://"+listen+c.ReadinessProbe.HTTPGet.Path, ""); code != 200 {
		t.Errorf("%s: readiness probe %s: %d %q", w.name, c.ReadinessProbe.HTTPGet.Path, code, body)
	}
	token := o.secrets["reel-admin"].StringData["token"]
	if code, body := probe("http://"+admin+w.pod.Annotations["prometheus.io/path"], token); code != 200 || !strings.Contains(body, "reel_edge_") {
		t.Errorf("%s: /metrics with the Secret's token: %d", w.name, code)
	}
	if code, _ := probe("http://"+admin+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("%s: /metrics without the token: %d, want 401 (the scrape needs the token)", w.name, code)
	}
}
