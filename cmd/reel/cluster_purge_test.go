package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// purgeReport is the part of a cluster purge's report (edge/purgefan.go) the test reads.
type purgeReport struct {
	ID    string `json:"id"`
	Nodes map[string]struct {
		State    string `json:"state"`
		Purged   int    `json:"purged"`
		Attempts int    `json:"attempts"`
	} `json:"nodes"`
	Confirmed int  `json:"confirmed"`
	Pending   int  `json:"pending"`
	Complete  bool `json:"complete"`
}

func adminRequest(t *testing.T, method, u string) (int, purgeReport) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("Authorization", "Bearer test") // startEdge's REEL_ADMIN_TOKEN
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r purgeReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, b)
	}
	return resp.StatusCode, r
}

// ownMember is the last member of a Cache-Status field: the node that answered the client.
func ownMember(cacheStatus string) string {
	members := strings.Split(cacheStatus, ",")
	return strings.TrimSpace(members[len(members)-1])
}

// TestClusterPurgeProcesses: the loopback cluster of TestCluster (3 edges → 2 shields, separate
// `reel edge` processes) with every node's admin API in cluster.peers. An object is cached on
// all five; shield-2 (with a disk tier) is killed; one purge call at edge-1 confirms the four
// others, says shield-2 is pending, and once shield-2 is started again on its folder (still
// holding the object) the retry reaches it and the report confirms it. Every node's copy is
// then gone.
func TestClusterPurgeProcesses(t *testing.T) {
	t.Parallel()
	bin := buildReel(t)
	origin := newClusterOrigin(t)
	names := []string{"shield-1", "shield-2", "edge-1", "edge-2", "edge-3"}
	admins := map[string]string{}
	var peers []string
	for _, n := range names {
		admins[n] = freeAddr(t)
		peers = append(peers, "http://"+admins[n])
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cluster.yaml")
	cfg := fmt.Sprintf("cluster:\n  peers: [%s]\n  retry_interval: 50ms\n  timeout: 2s\n", strings.Join(peers, ", "))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	shield2Dir := filepath.Join(dir, "shield-2-cache")
	shield2Listen := freeAddr(t)
	shield2Args := []string{"edge", "--config", cfgFile, "--name", "shield-2", "--origin", origin.URL,
		"--listen", shield2Listen, "--admin", admins["shield-2"], "--cache-dir", shield2Dir}
	startShield2 := func() *exec.Cmd {
		cmd := exec.Command(bin, shield2Args...)
		cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN=test")
		runUntilServing(t, "shield-2", cmd)
		return cmd
	}
	urls := map[string]string{}
	_, urls["shield-1"] = startEdge(t, bin, "--config", cfgFile, "--name", "shield-1", "--origin", origin.URL, "--admin", admins["shield-1"])
	shield2 := startShield2()
	urls["shield-2"] = "http://" + shield2Listen
	for _, n := range names[2:] {
		_, urls[n] = startEdge(t, bin, "--config", cfgFile, "--name", n, "--origin", origin.URL, "--admin", admins[n],
			"--parent", urls["shield-1"], "--parent", urls["shield-2"])
	}
	client := &http.Client{Timeout: 20 * time.Second}
	const path = "/purge/a.m4s"
	// own is the Cache-Status member of the node asked (a shield asked directly, or an edge).
	own := func(node string) string {
		status, body, cs, err := clusterGet(client, urls[node], path)
		if err != nil || status != 200 || string(body) != "object "+path {
			t.Fatalf("%s %s: %d %q %v", node, path, status, body, err)
		}
		return ownMember(cs)
	}
	for _, n := range names {
		own(n)
		if m := own(n); !strings.Contains(m, "hit") {
			t.Fatalf("warm-up: %s answers %q, want a hit", n, m)
		}
	}

	shield2.Process.Kill() // SIGKILL: its disk tier keeps the object
	shield2.Wait()
	target := url.QueryEscape("http://" + clusterHost + path)
	code, rep := adminRequest(t, "POST", "http://"+admins["edge-1"]+"/purge?url="+target+"&cluster=1&id=cp-1")
	t.Logf("purge with shield-2 down: %d, %d confirmed, %d pending", code, rep.Confirmed, rep.Pending)
	if code != http.StatusAccepted || rep.Confirmed != 4 || rep.Pending != 1 || rep.Nodes["http://"+admins["shield-2"]].State != "pending" {
		t.Fatalf("purge with shield-2 down: %d %+v", code, rep)
	}
	for _, n := range []string{"shield-1", "edge-2", "edge-3"} {
		if s := rep.Nodes["http://"+admins[n]]; s.State != "confirmed" || s.Purged != 1 {
			t.Errorf("%s: %+v, want confirmed with its copy purged", n, s)
		}
	}

	startShield2()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !rep.Complete {
		if time.Now().After(deadline) {
			t.Fatalf("shield-2 not confirmed 30s after its restart: %+v", rep)
		}
		<-tick.C
		_, rep = adminRequest(t, "GET", "http://"+admins["edge-1"]+"/purge/cp-1")
	}
	s2 := rep.Nodes["http://"+admins["shield-2"]]
	t.Logf("shield-2 after its restart: %+v", s2)
	if rep.Confirmed != 5 || s2.State != "confirmed" || s2.Purged != 1 || s2.Attempts < 2 {
		t.Fatalf("final report %+v; shield-2 %+v: want all 5 confirmed, shield-2's kept copy purged by a retry", rep, s2)
	}
	// The shields first: asking an edge refills the shield that owns the object.
	for _, n := range names {
		if m := own(n); strings.Contains(m, "hit") {
			t.Errorf("%s still has its copy after the cluster purge: %q", n, m)
		}
	}
}
