package mutate

import (
	"context"
	"fmt"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Review asks Options.LookupImages once, with the pod it decoded, and
// hardens from the facts it returns; a pod exempt as a whole where
// exemptions count is never looked up, and facts the caller gives win.
func TestReviewLookupImagesHook(t *testing.T) {
	const pod = `{"metadata":{"name":"p"%s},"spec":{"containers":[{"name":"app","image":"reg/app:1"}]}}`
	exempt := `,"annotations":{"pod-hardener.io/exempt":"true"}`
	cfg := profiles.Default()
	cfg.Exemptions.Subjects.Users = []string{"admin"}
	uid := int64(1000)
	facts := ImageSet{"reg/app:1": {Ref: "reg/app:1", User: "app", UID: &uid, GID: &uid}}
	for _, tc := range []struct {
		name      string
		ann       string
		user      string
		given     ImageSet
		wantCalls int
		wantUser  bool
	}{
		{name: "plain pod", user: "dev", wantCalls: 1, wantUser: true},
		{name: "exempt, authorized", ann: exempt, user: "admin", wantCalls: 0},
		{name: "exempt, refused", ann: exempt, user: "mallory", wantCalls: 1, wantUser: true},
		{name: "facts given", user: "dev", given: ImageSet{}, wantCalls: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(fmt.Sprintf(pod, tc.ann))
			calls := 0
			o := Options{Images: tc.given, LookupImages: func(_ context.Context, p *Pod) ImageSet {
				calls++
				if refs := p.ImageRefs(nil); len(refs) != 1 || refs[0] != "reg/app:1" {
					t.Errorf("hook got a pod with images %v, want [reg/app:1]", refs)
				}
				return facts
			}}
			res, err := Review(context.Background(), cfg, raw, profiles.Facts{Namespace: "apps", User: tc.user, NamespaceKnown: true}, o)
			if err != nil {
				t.Fatal(err)
			}
			if calls != tc.wantCalls {
				t.Fatalf("LookupImages called %d times, want %d", calls, tc.wantCalls)
			}
			got := false
			for _, d := range res.ImageDecisions {
				if d == "user=1000:1000@app" {
					got = true
				}
			}
			if got != tc.wantUser {
				t.Fatalf("image decisions %v: named user's ids decided = %v, want %v", res.ImageDecisions, got, tc.wantUser)
			}
		})
	}
}
