package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// testConfig: a namespace rule by name, one namespace allowed exemptions
// by config, and a listed user (whom no stored pod can be proven to come from).
const testConfig = `defaultProfile: restricted
namespaces:
  - names: ["legacy-*"]
    profile: baseline
exemptions:
  namespaces: ["exempt-by-config"]
  subjects:
    users: ["alice"]
`

func loadTestConfig(t *testing.T) *profiles.Config {
	t.Helper()
	cfg, err := profiles.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func ctrl(apiVersion, kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, Controller: &yes, UID: types.UID("u-" + name)}}
}

// plain is a pod as stored when nothing hardened it.
func plain(namespace, name string, owner []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, OwnerReferences: owner, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
			ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePath: "/dev/termination-log"}}},
	}
}

// hardenedBy stores p as the webhook would have under a given namespace's
// facts: the engine's patch applied with an independent RFC 6902 library.
func hardenedBy(t *testing.T, cfg *profiles.Config, f profiles.Facts, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mutate.Review(context.Background(), cfg, raw, f, mutate.Options{})
	if err != nil || res.Denied {
		t.Fatalf("hardening fixture %s: %v %s", p.Name, err, res.Message)
	}
	out, err := mutate.Apply(raw, res.Operations)
	if err != nil {
		t.Fatal(err)
	}
	var hp corev1.Pod
	if err := json.Unmarshal(out, &hp); err != nil {
		t.Fatal(err)
	}
	return &hp
}

// pager makes the fake clientset paginate pods and namespaces: the fake
// ignores Limit and Continue, so this reactor serves pages of at most
// Limit objects with a Continue token, and records every request.
type pager struct {
	cs       *fake.Clientset
	requests []metav1.ListOptions // pods only
	maxPage  int
}

func newPager(cs *fake.Clientset) *pager {
	p := &pager{cs: cs}
	cs.PrependReactor("list", "pods", p.react)
	cs.PrependReactor("list", "namespaces", p.react)
	return p
}

func (p *pager) react(a k8stesting.Action) (bool, runtime.Object, error) {
	la := a.(k8stesting.ListActionImpl)
	opts := la.GetListOptions()
	gvr := la.GetResource()
	objs, err := p.cs.Tracker().List(gvr, la.GetKind(), la.GetNamespace(), opts)
	if err != nil {
		return true, nil, err
	}
	start := 0
	if opts.Continue != "" {
		if start, err = strconv.Atoi(strings.TrimPrefix(opts.Continue, "page-")); err != nil {
			return true, nil, fmt.Errorf("bad continue token %q", opts.Continue)
		}
	}
	switch l := objs.(type) {
	case *corev1.PodList:
		p.requests = append(p.requests, opts)
		items := l.Items[:0]
		for _, it := range l.Items {
			if la.GetListRestrictions().Labels.Matches(labels.Set(it.Labels)) {
				items = append(items, it)
			}
		}
		sort.Slice(items, func(i, j int) bool {
			return items[i].Namespace+"/"+items[i].Name < items[j].Namespace+"/"+items[j].Name
		})
		end, next := page(start, int(opts.Limit), len(items))
		out := &corev1.PodList{Items: items[start:end]}
		out.Continue = next
		p.maxPage = max(p.maxPage, len(out.Items))
		return true, out, nil
	case *corev1.NamespaceList:
		sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
		end, next := page(start, int(opts.Limit), len(l.Items))
		out := &corev1.NamespaceList{Items: l.Items[start:end]}
		out.Continue = next
		return true, out, nil
	}
	return false, nil, nil
}

func page(start, limit, n int) (int, string) {
	if limit <= 0 || start+limit >= n {
		return n, ""
	}
	return start + limit, "page-" + strconv.Itoa(start+limit)
}

// cluster is the fixture: one workload of each kind and status.
func cluster(t *testing.T, cfg *profiles.Config) *fake.Clientset {
	t.Helper()
	appsFacts := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	legacyFacts := profiles.Facts{Namespace: "apps", NamespaceKnown: true, NamespaceLabels: map[string]string{profiles.LabelProfile: "baseline"}}
	objs := []runtime.Object{
		ns("apps", nil),
		ns("legacy-crm", nil),
		ns("team-x", map[string]string{profiles.LabelAllowExemptions: "true"}),
		ns("exempt-by-config", nil),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", Namespace: "apps", OwnerReferences: ctrl("apps/v1", "Deployment", "web")}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "api-55c4", Namespace: "apps", OwnerReferences: ctrl("apps/v1", "Deployment", "api")}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "orphan-rs", Namespace: "apps"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "nightly-2890", Namespace: "apps", OwnerReferences: ctrl("batch/v1", "CronJob", "nightly")}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "apps"}},
	}
	add := func(p *corev1.Pod) { objs = append(objs, p) }
	// Deployment web: three pods created before the webhook existed.
	for i := range 3 {
		add(plain("apps", fmt.Sprintf("web-7d9f-%d", i), ctrl("apps/v1", "ReplicaSet", "web-7d9f")))
	}
	// Deployment api: hardened by the webhook under today's profile.
	for i := range 2 {
		add(hardenedBy(t, cfg, appsFacts, plain("apps", fmt.Sprintf("api-55c4-%d", i), ctrl("apps/v1", "ReplicaSet", "api-55c4"))))
	}
	// StatefulSet db: privileged, a conflict under restricted.
	db := plain("apps", "db-0", ctrl("apps/v1", "StatefulSet", "db"))
	yes := true
	db.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	add(db)
	// CronJob nightly, through its Job.
	add(plain("apps", "nightly-2890-x", ctrl("batch/v1", "Job", "nightly-2890")))
	// Job migrate without a CronJob; a ReplicaSet without a Deployment.
	add(plain("apps", "migrate-q", ctrl("batch/v1", "Job", "migrate")))
	add(plain("apps", "orphan-rs-1", ctrl("apps/v1", "ReplicaSet", "orphan-rs")))
	// Bare pod hardened under baseline, selected today: restricted (drift).
	add(hardenedBy(t, cfg, legacyFacts, plain("apps", "old-profile", nil)))
	// Bare pod asking for an exemption where none is allowed.
	sneaky := plain("apps", "sneaky", nil)
	sneaky.Annotations = map[string]string{mutate.AnnotationExempt: "true"}
	add(sneaky)
	// Exempt by requester at admission: the webhook recorded it.
	byAlice := plain("apps", "by-alice", nil)
	byAlice.Annotations = map[string]string{mutate.AnnotationExempt: "true", mutate.AnnotationExempted: "*", mutate.AnnotationHardened: "restricted"}
	add(byAlice)
	// DaemonSet in a namespace whose label allows exemptions.
	agent := plain("team-x", "agent-abcde", ctrl("apps/v1", "DaemonSet", "agent"))
	agent.Annotations = map[string]string{mutate.AnnotationExempt: "true"}
	add(agent)
	// Partial exemption allowed by config: still changes the rest.
	part := plain("exempt-by-config", "partial", nil)
	part.Annotations = map[string]string{mutate.AnnotationExemptControls: "readOnlyRootFilesystem"}
	add(part)
	// Namespace rule: legacy-* gets baseline; a plain pod there.
	add(plain("legacy-crm", "crm", nil))
	return fake.NewClientset(objs...)
}

func byName(r *Report) map[string]*Workload {
	out := map[string]*Workload{}
	for _, w := range r.Workloads {
		out[w.Namespace+"/"+w.Kind+"/"+w.Name] = w
	}
	return out
}

func runFixture(t *testing.T, o Options) (*Report, *pager) {
	t.Helper()
	cfg := loadTestConfig(t)
	cs := cluster(t, cfg)
	pg := newPager(cs)
	o.Now = func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }
	r, err := Run(context.Background(), cs, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, pg
}

func TestGroupingAndStatuses(t *testing.T) {
	r, _ := runFixture(t, Options{PageSize: 4})
	ws := byName(r)
	want := map[string]struct {
		status Status
		pods   int
	}{
		"apps/Deployment/web":          {WouldChange, 3},
		"apps/Deployment/api":          {Hardened, 2},
		"apps/StatefulSet/db":          {Conflict, 1},
		"apps/CronJob/nightly":         {WouldChange, 1},
		"apps/Job/migrate":             {WouldChange, 1},
		"apps/ReplicaSet/orphan-rs":    {WouldChange, 1},
		"apps/Pod/old-profile":         {WouldChange, 1},
		"apps/Pod/sneaky":              {WouldChange, 1},
		"apps/Pod/by-alice":            {Exempt, 1},
		"team-x/DaemonSet/agent":       {Exempt, 1},
		"exempt-by-config/Pod/partial": {WouldChange, 1},
		"legacy-crm/Pod/crm":           {WouldChange, 1},
	}
	if len(ws) != len(want) {
		var got []string
		for k := range ws {
			got = append(got, k)
		}
		sort.Strings(got)
		t.Errorf("workloads %v, want %d", got, len(want))
	}
	for k, w := range want {
		got := ws[k]
		if got == nil {
			t.Errorf("%s missing", k)
			continue
		}
		if got.Status != w.status || got.Pods != w.pods {
			t.Errorf("%s: status %s pods %d, want %s %d", k, got.Status, got.Pods, w.status, w.pods)
		}
	}
	if r.Totals.Pods != 15 {
		t.Errorf("totals: %d pods, want 15", r.Totals.Pods)
	}
	web := ws["apps/Deployment/web"]
	if web.Unreviewed != 3 || web.PSSNow == api.LevelRestricted || web.PSSAfter != api.LevelRestricted {
		t.Errorf("web: unreviewed %d, PSS %s -> %s; want 3, not restricted -> restricted", web.Unreviewed, web.PSSNow, web.PSSAfter)
	}
	if ws["legacy-crm/Pod/crm"].Profiles[0] != "baseline" {
		t.Errorf("legacy-crm: profile %v, want baseline (config namespace rule)", ws["legacy-crm/Pod/crm"].Profiles)
	}
	if api := ws["apps/Deployment/api"]; api.Unreviewed != 0 || len(api.Changes) != 0 || len(api.Drift) != 0 || api.PSSNow != "restricted" {
		t.Errorf("api, hardened by the webhook: %+v", api)
	}
}

func TestChangesAsTheWebhookSaysThem(t *testing.T) {
	r, _ := runFixture(t, Options{})
	web := byName(r)["apps/Deployment/web"]
	var texts []string
	for _, c := range web.Changes {
		texts = append(texts, c.Control+": "+c.Text)
		if c.Pods != 3 {
			t.Errorf("%s: %d pods, want 3", c.Field, c.Pods)
		}
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{
		"allowPrivilegeEscalation: set allowPrivilegeEscalation=false on containers[app]",
		"runAsNonRoot: set securityContext.runAsNonRoot=true on pod",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("changes lack %q:\n%s", want, joined)
		}
	}
	db := byName(r)["apps/StatefulSet/db"]
	if len(db.Conflicts) != 1 || db.Conflicts[0].Control != profiles.Privileged || db.Conflicts[0].Where != "containers[app]" || db.Conflicts[0].Action != profiles.ActionWarn {
		t.Errorf("db conflicts: %+v", db.Conflicts)
	}
}

func TestExemptionsAndWhoAllowedThem(t *testing.T) {
	r, _ := runFixture(t, Options{})
	ws := byName(r)
	agent := ws["team-x/DaemonSet/agent"]
	if len(agent.Exemptions) != 1 || agent.Exemptions[0].Exempted != "*" || !strings.Contains(agent.Exemptions[0].AllowedBy, "label pod-hardener.io/allow-exemptions=true") {
		t.Errorf("agent exemptions: %+v", agent.Exemptions)
	}
	if agent.PSSAfter != agent.PSSNow {
		t.Errorf("an exempt pod is not changed: PSS %s -> %s", agent.PSSNow, agent.PSSAfter)
	}
	alice := ws["apps/Pod/by-alice"]
	if len(alice.Exemptions) != 1 || alice.Exemptions[0].AllowedBy != requesterAllowed {
		t.Errorf("by-alice: %+v", alice.Exemptions)
	}
	// The same annotation without the webhook's record is not honoured.
	sneaky := ws["apps/Pod/sneaky"]
	if len(sneaky.Exemptions) != 0 || sneaky.Status != WouldChange {
		t.Errorf("sneaky: %+v", sneaky)
	}
	part := ws["exempt-by-config/Pod/partial"]
	if len(part.Exemptions) != 1 || part.Exemptions[0].Exempted != "readOnlyRootFilesystem@app" || !strings.Contains(part.Exemptions[0].AllowedBy, "exemptions.namespaces") {
		t.Errorf("partial: %+v", part.Exemptions)
	}
	for _, c := range part.Changes {
		if c.Control == profiles.ReadOnlyRootFilesystem {
			t.Errorf("partial: exempt control would still change: %+v", c)
		}
	}
}

func TestDrift(t *testing.T) {
	r, _ := runFixture(t, Options{})
	ws := byName(r)
	old := ws["apps/Pod/old-profile"]
	kinds := map[string]string{}
	for _, d := range old.Drift {
		kinds[d.Kind] = d.Detail
	}
	if !strings.Contains(kinds[DriftProfile], `hardened under profile "baseline"; selected today: "restricted"`) {
		t.Errorf("old-profile drift: %+v", old.Drift)
	}
	if _, ok := kinds[DriftStillChanges]; !ok || old.Drifted != 1 {
		t.Errorf("old-profile: want still-changes drift, 1 drifted pod: %+v", old)
	}
	for _, k := range []string{"apps/Deployment/api", "apps/Deployment/web", "team-x/DaemonSet/agent"} {
		if len(ws[k].Drift) != 0 {
			t.Errorf("%s: unexpected drift %+v", k, ws[k].Drift)
		}
	}
	if r.Totals.Drifted != 1 {
		t.Errorf("drifted pods %d, want 1", r.Totals.Drifted)
	}
}

func TestDriftOfRevokedExemption(t *testing.T) {
	cfg := loadTestConfig(t)
	// Exempted at admission in team-x; the label has since been removed.
	p := plain("team-y", "was-exempt", nil)
	p.Annotations = map[string]string{mutate.AnnotationExemptControls: "capabilities", mutate.AnnotationExempted: "capabilities@app", mutate.AnnotationHardened: "restricted"}
	cfg.Exemptions.Subjects = profiles.Subjects{}
	r, err := newEvaluator(cfg).evaluate(profiles.Facts{Namespace: "team-y", NamespaceKnown: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range r.drift {
		found = found || (d.kind == DriftExemptions && strings.Contains(d.detail, "exempted at admission: capabilities@app; honoured today: none"))
	}
	if !found || r.status != WouldChange {
		t.Errorf("status %s, drift %+v", r.status, r.drift)
	}
}

func TestNamespaceSummary(t *testing.T) {
	r, _ := runFixture(t, Options{})
	got := map[string]NamespaceSummary{}
	var order []string
	for _, n := range r.Namespaces {
		got[n.Name] = n
		order = append(order, n.Name)
	}
	if strings.Join(order, ",") != "apps,exempt-by-config,legacy-crm,team-x" {
		t.Errorf("namespaces %v", order)
	}
	apps := got["apps"]
	if apps.Pods != 12 || apps.Workloads[WouldChange] != 6 || apps.Workloads[Hardened] != 1 || apps.Workloads[Conflict] != 1 || apps.Workloads[Exempt] != 1 {
		t.Errorf("apps: %+v", apps)
	}
	if apps.Profile != "restricted" || apps.Exemptions != "not allowed" {
		t.Errorf("apps profile %q exemptions %q", apps.Profile, apps.Exemptions)
	}
	if l := got["legacy-crm"]; l.Profile != "baseline" || !strings.HasPrefix(l.Source, "config namespaces") {
		t.Errorf("legacy-crm: %+v", l)
	}
}

func TestPaginates(t *testing.T) {
	r, pg := runFixture(t, Options{PageSize: 4})
	if len(pg.requests) != 4 { // 15 pods, 4 a page
		t.Errorf("%d pod list requests, want 4", len(pg.requests))
	}
	for i, o := range pg.requests {
		if o.Limit != 4 {
			t.Errorf("request %d: Limit %d, want 4", i, o.Limit)
		}
		if (i == 0) != (o.Continue == "") {
			t.Errorf("request %d: Continue %q", i, o.Continue)
		}
	}
	if pg.maxPage > 4 {
		t.Errorf("a page of %d pods", pg.maxPage)
	}
	if r.Totals.Pods != 15 {
		t.Errorf("%d pods audited, want 15", r.Totals.Pods)
	}
}

func TestScope(t *testing.T) {
	r, _ := runFixture(t, Options{Namespace: "team-x"})
	if r.Totals.Pods != 1 || len(r.Namespaces) != 1 || r.Namespaces[0].Name != "team-x" {
		t.Errorf("-n team-x: %d pods, namespaces %+v", r.Totals.Pods, r.Namespaces)
	}
	r, _ = runFixture(t, Options{LabelSelector: "app in (web-7d9f-0,crm)"})
	if r.Totals.Pods != 2 {
		t.Errorf("-l: %d pods, want 2", r.Totals.Pods)
	}
}

func TestPaginateStopsOnRepeatedToken(t *testing.T) {
	calls := 0
	err := paginate(context.Background(), 10, func(metav1.ListOptions) (string, error) {
		calls++
		if calls > 5 {
			t.Fatal("looped")
		}
		return "same", nil
	})
	if err == nil || calls != 2 {
		t.Errorf("err %v after %d calls", err, calls)
	}
}

func TestMirrorPodAndDeny(t *testing.T) {
	cfg, err := profiles.Parse([]byte("defaultProfile: strict\nprofiles:\n  - name: strict\n    extends: restricted\n    onConflict: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := profiles.Facts{Namespace: "kube-system", NamespaceKnown: true}
	mirror := plain("kube-system", "etcd-node1", ctrl("v1", "Node", "node1"))
	mirror.Annotations = map[string]string{mutate.AnnotationMirror: "abc"}
	mirror.Spec.NodeName = "node1"
	r, err := newEvaluator(cfg).evaluate(f, mirror)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != Exempt || r.allowedBy != mirrorAllowed || r.pssAfter != r.pssNow {
		t.Errorf("mirror pod: %+v", r)
	}
	yes := true
	priv := plain("kube-system", "priv", nil)
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	r, err = newEvaluator(cfg).evaluate(f, priv)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != Conflict || !strings.Contains(r.rejected, "rejected") || r.pssAfter != api.LevelPrivileged {
		t.Errorf("denied pod: %+v", r)
	}
}

// replica is a pod of a ReplicaSet as the API server stores it: its own
// name, uid, node, labels, and token volume with a random suffix.
func replica(i int, suffix string) *corev1.Pod {
	p := plain("apps", fmt.Sprintf("web-7d9f-%d", i), ctrl("apps/v1", "ReplicaSet", "web-7d9f"))
	p.GenerateName = "web-7d9f-"
	p.UID = types.UID(fmt.Sprintf("uid-%d", i))
	p.ResourceVersion = fmt.Sprint(100 + i)
	p.Labels["pod-index"] = fmt.Sprint(i)
	p.Spec.NodeName = fmt.Sprintf("node-%d", i)
	vol := saTokenVolume + suffix
	p.Spec.Volumes = []corev1.Volume{{Name: vol, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: vol, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	return p
}

func TestReplicasReviewedOnce(t *testing.T) {
	cfg := loadTestConfig(t)
	f := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	shared := newEvaluator(cfg)
	a, b := replica(0, "x7k2q"), replica(1, "p9zzm")
	ra, err := shared.evaluate(f, a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := shared.evaluate(f, b)
	if err != nil {
		t.Fatal(err)
	}
	if shared.reviews != 1 {
		t.Errorf("two replicas reviewed %d times, want 1", shared.reviews)
	}
	if b.Spec.Volumes[0].Name != saTokenVolume+"p9zzm" || b.Spec.Containers[0].VolumeMounts[0].Name != saTokenVolume+"p9zzm" || b.Spec.NodeName != "node-1" {
		t.Error("reviewing changed the stored pod")
	}
	// Shared or not, the result is the one a review of that pod alone gives.
	alone, err := newEvaluator(cfg).evaluate(f, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rb, alone) || !reflect.DeepEqual(ra, alone) || alone.status != WouldChange {
		t.Errorf("shared %+v\nalone %+v", rb, alone)
	}
	// A replica that differs in what the engine reads is reviewed anew.
	yes := true
	c := replica(2, "aaaaa")
	c.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	rc, err := shared.evaluate(f, c)
	if err != nil {
		t.Fatal(err)
	}
	if shared.reviews != 2 || rc.status != Conflict {
		t.Errorf("changed replica: %d reviews, status %s", shared.reviews, rc.status)
	}
	// A mirror pod of the same spec is exempt, and the shared result stays.
	m := replica(3, "bbbbb")
	m.Annotations = map[string]string{mutate.AnnotationMirror: "x"}
	rm, err := shared.evaluate(f, m)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := shared.evaluate(f, replica(4, "ccccc"))
	if rm.status != Exempt || again.status != WouldChange {
		t.Errorf("mirror %s, replica after it %s", rm.status, again.status)
	}
}

// TestOwnersListedOncePerNamespace: a namespace's ReplicaSets and Jobs are
// listed once, not read one by one; one missing from the list is read on
// its own; a refused list is reported and its pods grouped by the owner
// named on them.
func TestOwnersListedOncePerNamespace(t *testing.T) {
	cfg := loadTestConfig(t)
	cs := cluster(t, cfg)
	newPager(cs)
	// A pod whose ReplicaSet is not in the list (made after it was read).
	late := plain("apps", "late-1", ctrl("apps/v1", "ReplicaSet", "late"))
	if err := cs.Tracker().Add(late); err != nil {
		t.Fatal(err)
	}
	cs.PrependReactor("list", "replicasets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		la := a.(k8stesting.ListActionImpl)
		list, err := cs.Tracker().List(la.GetResource(), la.GetKind(), la.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		if err := cs.Tracker().Add(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "apps",
			OwnerReferences: ctrl("apps/v1", "Deployment", "late")}}); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
		return true, list, nil
	})
	r, err := Run(context.Background(), cs, cfg, Options{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range cs.Actions() {
		count[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	if count["list replicasets"] != 1 || count["list jobs"] != 1 || count["get replicasets"] != 1 || count["get jobs"] != 0 {
		t.Errorf("owner requests: %v; want one list each, one get (the late ReplicaSet)", count)
	}
	ws := byName(r)
	if ws["apps/Deployment/late"] == nil || ws["apps/Deployment/web"] == nil || ws["apps/CronJob/nightly"] == nil {
		t.Errorf("workloads: %v", keysOf(ws))
	}

	// Listing and reading ReplicaSets refused.
	cs = cluster(t, cfg)
	newPager(cs)
	cs.PrependReactor("*", "replicasets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(appsv1.Resource("replicasets"), "", errors.New("no RBAC"))
	})
	// Two pods of a namespace that is gone (being deleted): read once,
	// then reviewed as the webhook reviews when its lookup fails.
	for _, n := range []string{"g1", "g2"} {
		if err := cs.Tracker().Add(plain("ghost", n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	r, err = Run(context.Background(), cs, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	count = map[string]int{}
	for _, a := range cs.Actions() {
		count[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	if count["get replicasets"] != 0 || count["get namespaces"] != 1 {
		t.Errorf("requests: %v; want no get of a ReplicaSet after the list was refused, one get of the gone namespace", count)
	}
	for _, n := range r.Namespaces {
		if n.Name == "ghost" && (n.Source != "default (namespace unknown)" || n.Exemptions != "not allowed" || n.Pods != 2) {
			t.Errorf("ghost namespace: %+v", n)
		}
	}
	ws = byName(r)
	if ws["apps/ReplicaSet/web-7d9f"] == nil || ws["apps/ReplicaSet/web-7d9f"].Pods != 3 || ws["apps/CronJob/nightly"] == nil {
		t.Errorf("workloads without ReplicaSet access: %v", keysOf(ws))
	}
	if len(r.OwnerLookupErrors) == 0 || !strings.Contains(strings.Join(r.OwnerLookupErrors, "\n"), "listing ReplicaSets in apps") {
		t.Errorf("owner errors: %v", r.OwnerLookupErrors)
	}
}

func keysOf(m map[string]*Workload) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWhollyExemptPodIsReviewed: the webhook writes only the exempted
// annotation on a wholly exempt pod; that pod was reviewed.
func TestWhollyExemptPodIsReviewed(t *testing.T) {
	cfg := loadTestConfig(t)
	f := profiles.Facts{Namespace: "team-x", NamespaceKnown: true, NamespaceLabels: map[string]string{profiles.LabelAllowExemptions: "true"}}
	p := plain("team-x", "ex", nil)
	p.Annotations = map[string]string{mutate.AnnotationExempt: "true"}
	stored := hardenedBy(t, cfg, f, p)
	if stored.Annotations[mutate.AnnotationExempted] != "*" || stored.Annotations[mutate.AnnotationHardened] != "" {
		t.Fatalf("the engine's annotations on a wholly exempt pod changed: %v", stored.Annotations)
	}
	r, err := newEvaluator(cfg).evaluate(f, stored)
	if err != nil {
		t.Fatal(err)
	}
	if !r.reviewed || r.status != Exempt || len(r.drift) != 0 {
		t.Errorf("reviewed %v, status %s, drift %v", r.reviewed, r.status, r.drift)
	}
	if r, _ := newEvaluator(cfg).evaluate(f, p); r.reviewed {
		t.Error("the same pod never seen by the webhook counts as reviewed")
	}
}

// TestErrorStopsTheList: a pod that cannot be reviewed ends the audit
// with its name, and no further page is read.
func TestErrorStopsTheList(t *testing.T) {
	cfg := loadTestConfig(t)
	cs := cluster(t, cfg)
	pg := newPager(cs)
	bad := plain("apps", "aaa-bad", nil) // first in list order
	bad.Spec.Containers[0].Name = ""
	if err := cs.Tracker().Add(bad); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), cs, cfg, Options{PageSize: 2})
	if err == nil || !strings.Contains(err.Error(), "pod apps/aaa-bad") {
		t.Fatalf("err %v", err)
	}
	if len(pg.requests) > 2 {
		t.Errorf("%d pages read after the error on the first", len(pg.requests))
	}
}

// TestReportModeAuditedAsHardenMode: the audit says what hardening would
// change whatever the mode, so an admin in report mode sees what switching
// a namespace to harden will do.
func TestReportModeAuditedAsHardenMode(t *testing.T) {
	cfg, err := profiles.Parse([]byte("defaultProfile: strict\nprofiles:\n  - name: strict\n    mode: report\n    onConflict: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	priv := plain("apps", "priv", nil)
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	for _, labels := range []map[string]string{nil, {profiles.LabelMode: "harden"}} {
		f := profiles.Facts{Namespace: "apps", NamespaceKnown: true, NamespaceLabels: labels}
		r, err := newEvaluator(cfg).evaluate(f, plain("apps", "web", nil))
		if err != nil {
			t.Fatal(err)
		}
		if r.status != WouldChange || len(r.changes) == 0 || r.pssAfter != api.LevelRestricted {
			t.Errorf("labels %v: plain pod %s, %d changes, %s after", labels, r.status, len(r.changes), r.pssAfter)
		}
		r, err = newEvaluator(cfg).evaluate(f, priv)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != Conflict || !strings.Contains(r.rejected, "rejected") {
			t.Errorf("labels %v: denied pod %s, rejected %q", labels, r.status, r.rejected)
		}
	}
}
