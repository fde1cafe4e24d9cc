package imagefacts

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/mutate"
)

const (
	// maxAccountFileBytes caps /etc/passwd and /etc/group: real ones are a
	// few KiB; a larger one is refused, never read into memory.
	maxAccountFileBytes = 1 << 20
	// maxLayerBytes caps the uncompressed tar read across all layers while
	// looking for the account files, so a layer that decompresses to a
	// huge stream costs bounded CPU even before the time runs out.
	maxLayerBytes = 512 << 20
	// maxID is the largest uid or gid accepted: Linux ids are 32-bit and
	// 4294967295 means "no id".
	maxID = 1<<32 - 2
)

// splitUser splits a config User into its user and group parts
// ("app:staff" -> "app", "staff"; "app" -> "app", "").
func splitUser(s string) (user, group string) {
	user, group, _ = strings.Cut(s, ":")
	return user, group
}

// numericID parses a numeric uid or gid; ok is false for a name.
func numericID(s string) (id int64, ok bool, err error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxID {
		return 0, true, fmt.Errorf("id %q is out of range", s)
	}
	return n, true, nil
}

// resolveUser fills UID, GID and UserErr from the config's User, reading
// the image's account files only when a part of it is a name. transient
// reports a failure worth retrying (network, time), which must not be
// cached with the digest's facts.
func resolveUser(ctx context.Context, f *mutate.ImageFacts, img v1.Image) (transient bool) {
	user, group := splitUser(f.User)
	if user == "" {
		if group == "" {
			// No USER: the runtime runs the image as root.
			f.UID, f.GID = ptr(0), ptr(0)
			return false
		}
		f.UserErr = fmt.Sprintf("USER %q names a group but no user", f.User)
		return false
	}
	uid, uidNumeric, err := numericID(user)
	if err != nil {
		f.UserErr = fmt.Sprintf("USER %q: %v", f.User, err)
		return false
	}
	gid, gidNumeric, err := numericID(group)
	if err != nil {
		f.UserErr = fmt.Sprintf("USER %q: %v", f.User, err)
		return false
	}
	if uidNumeric && (group == "" || gidNumeric) {
		f.UID = ptr(uid)
		if group != "" {
			f.GID = ptr(gid)
		}
		return false
	}
	want := accountFiles{passwd: !uidNumeric, group: group != "" && !gidNumeric}
	files, err := readAccountFiles(ctx, img, want)
	if err != nil {
		f.UserErr = fmt.Sprintf("USER %q: the image's account files could not be read: %v", f.User, err)
		return !errors.Is(err, errTooLarge) && !errors.Is(err, errMalformed)
	}
	if !uidNumeric {
		if files.passwd == nil {
			f.UserErr = fmt.Sprintf("USER %q is a name, and the image has no /etc/passwd", f.User)
			return false
		}
		u, g, err := lookupPasswd(files.passwd, user)
		if err != nil {
			f.UserErr = fmt.Sprintf("USER %q: %v", f.User, err)
			return false
		}
		uid = u
		if group == "" {
			gid, gidNumeric = g, true
		}
	}
	if group != "" && !gidNumeric {
		if files.group == nil {
			f.UserErr = fmt.Sprintf("USER %q names a group, and the image has no /etc/group", f.User)
			return false
		}
		g, err := lookupGroup(files.group, group)
		if err != nil {
			f.UserErr = fmt.Sprintf("USER %q: %v", f.User, err)
			return false
		}
		gid = g
	}
	f.UID, f.GID = ptr(uid), ptr(gid)
	return false
}

func ptr(n int64) *int64 { return &n }

var errMalformed = errors.New("malformed")

type accountFiles struct{ passwd, group bool }

type accountData struct{ passwd, group []byte }

// readAccountFiles streams the image's layers from the top down and
// returns /etc/passwd and /etc/group as the top-most layer holding each
// has them. Each layer is read only until what is wanted is settled (found,
// deleted by a whiteout, or hidden by an opaque /etc), so the base layer is
// read only when no later layer writes the file; a nil result means the
// image has no such file.
func readAccountFiles(ctx context.Context, img v1.Image, want accountFiles) (*accountData, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	out := &accountData{}
	settled := accountFiles{passwd: !want.passwd, group: !want.group}
	budget := int64(maxLayerBytes)
	for i := len(layers) - 1; i >= 0 && !(settled.passwd && settled.group); i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		err = scanLayer(ctx, &countingReader{r: rc, left: &budget}, out, &settled)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return out, nil
}

// scanLayer reads one layer's tar until every wanted file is settled.
func scanLayer(ctx context.Context, r io.Reader, out *accountData, settled *accountFiles) error {
	tr := tar.NewReader(r)
	// etcOpaque: this layer replaces /etc, so what it lacks lower layers
	// cannot supply; applied when the layer ends.
	etcOpaque := false
	for !(settled.passwd && settled.group) {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errTooLarge) {
				return err
			}
			return fmt.Errorf("reading the layer's tar: %w", err)
		}
		p := path.Clean("/" + h.Name)
		dir, base := path.Split(p)
		switch {
		case p == "/.wh.etc" || p == "/etc/.wh..wh..opq":
			etcOpaque = true
			continue
		case dir != "/etc/":
			continue
		}
		var file *[]byte
		var done *bool
		switch strings.TrimPrefix(base, ".wh.") {
		case "passwd":
			file, done = &out.passwd, &settled.passwd
		case "group":
			file, done = &out.group, &settled.group
		default:
			continue
		}
		if *done {
			continue
		}
		*done = true
		if strings.HasPrefix(base, ".wh.") {
			continue // deleted here: the image has none
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("/etc/%s is not a regular file (tar type %q); links are not followed: %w", base, h.Typeflag, errMalformed)
		}
		if h.Size > maxAccountFileBytes {
			return fmt.Errorf("/etc/%s is %d bytes, over the %d-byte limit: %w", base, h.Size, maxAccountFileBytes, errTooLarge)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxAccountFileBytes+1))
		if err != nil {
			return fmt.Errorf("reading /etc/%s: %w", base, err)
		}
		if len(b) > maxAccountFileBytes {
			return fmt.Errorf("/etc/%s is over the %d-byte limit: %w", base, maxAccountFileBytes, errTooLarge)
		}
		*file = b
	}
	if etcOpaque {
		settled.passwd, settled.group = true, true
	}
	return nil
}

// countingReader fails once more than *left bytes were read through all
// the readers sharing left.
type countingReader struct {
	r    io.Reader
	left *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.left <= 0 {
		return 0, fmt.Errorf("read %d uncompressed bytes of layers without finding the account files: %w", int64(maxLayerBytes), errTooLarge)
	}
	if int64(len(p)) > *c.left {
		p = p[:*c.left]
	}
	n, err := c.r.Read(p)
	*c.left -= int64(n)
	return n, err
}

// lookupPasswd finds a user's uid and primary gid in an /etc/passwd
// (name:password:uid:gid:gecos:home:shell). Lines that are not entries
// are skipped, as the C library skips them; the user's own entry must be
// well formed.
func lookupPasswd(data []byte, name string) (uid, gid int64, err error) {
	f, err := findEntry(data, name, 4)
	if err != nil {
		return 0, 0, fmt.Errorf("/etc/passwd: %w", err)
	}
	if f == nil {
		return 0, 0, fmt.Errorf("user %q is not in the image's /etc/passwd", name)
	}
	uid, ok, err := numericID(f[2])
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("/etc/passwd entry of %q has uid %q, not a number: %w", name, f[2], errMalformed)
	}
	gid, ok, err = numericID(f[3])
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("/etc/passwd entry of %q has gid %q, not a number: %w", name, f[3], errMalformed)
	}
	return uid, gid, nil
}

// lookupGroup finds a group's gid in an /etc/group (name:password:gid:members).
func lookupGroup(data []byte, name string) (int64, error) {
	f, err := findEntry(data, name, 3)
	if err != nil {
		return 0, fmt.Errorf("/etc/group: %w", err)
	}
	if f == nil {
		return 0, fmt.Errorf("group %q is not in the image's /etc/group", name)
	}
	gid, ok, err := numericID(f[2])
	if !ok || err != nil {
		return 0, fmt.Errorf("/etc/group entry of %q has gid %q, not a number: %w", name, f[2], errMalformed)
	}
	return gid, nil
}

// findEntry returns the colon-separated fields of the first line whose
// first field is name and which has at least n fields.
func findEntry(data []byte, name string, n int) ([]string, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("holds NUL bytes, not a text file: %w", errMalformed)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxAccountFileBytes+1)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+":") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%v: %w", err, errMalformed)
	}
	return nil, nil
}
