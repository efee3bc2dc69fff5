package packager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/reelvideo/reel/manifest"
)

// Publishing to S3 keeps the promise of the folder publish (publish.go): a player sees the
// previous presentation or the new one, never a mix, and a run that fails part way leaves the
// previous one in place and playable. A bucket has no rename, and a new presentation reuses the
// old one's file names (seg_00001.m4s), so it is uploaded beside the old one, never over it:
//
//	PREFIX/v-<digest>/…           the whole presentation as packaged (a folder of its own)
//	PREFIX/master.m3u8            its HLS master playlist, URIs pointing into v-<digest>/
//	PREFIX/manifest.mpd           its MPD, with <BaseURL>v-<digest>/</BaseURL>
//
// <digest> names the content (a hash of every file's name and content ETag), so uploading the
// same presentation again writes the same keys with the same bytes, and a segment URL never
// changes what it names (segments are served immutable for a year). The version folder's
// segments and init sections go up first, then its playlists and MPD, then the two entry
// manifests at PREFIX, each a single PUT that S3 applies whole: until the last PUT succeeds,
// PREFIX's manifests are the previous ones and every object they name is untouched. Earlier
// version folders are kept (players and caches may still hold their manifests); delete them
// with a lifecycle rule or `aws s3 rm --recursive` once no manifest names them.

// s3Concurrency bounds the PUTs in flight.
const s3Concurrency = 8

// versionPrefix starts a version folder's name.
const versionPrefix = "v-"

// s3PutHook, when set (tests), runs before each PUT with the object's key; an error it returns
// fails that PUT as the server's would.
var s3PutHook func(key string) error

// stagedFile is one file of the packaged folder.
type stagedFile struct {
	name  string // slash-separated, relative to the folder
	path  string
	etag  string
	mtime int64
	size  int64
}

// S3Upload uploads the packaged folder dir to loc as described above and returns the version
// folder's name. manifestMaxAge is the Cache-Control max-age of the manifests (zero means
// DefaultManifestMaxAge), as `reel origin` would send it.
func S3Upload(ctx context.Context, dir string, loc S3Location, manifestMaxAge time.Duration, opt *S3Options, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if manifestMaxAge <= 0 {
		manifestMaxAge = DefaultManifestMaxAge
	}
	manifestCC := manifestCacheControl(manifestMaxAge)
	client, err := newS3Client(ctx, opt)
	if err != nil {
		return "", &OutputError{Dir: loc.String(), Err: err}
	}
	files, err := stageList(ctx, dir)
	if err != nil {
		return "", &OutputError{Dir: loc.String(), Err: err}
	}
	version := versionName(files)
	vloc := S3Location{Bucket: loc.Bucket, Prefix: loc.key(version)}

	var media, manifests []stagedFile
	for _, f := range files {
		if ct, _ := classify(f.name, manifestCC); ct == "" {
			continue // nothing the origin would serve (the packager writes none)
		}
		if isManifest(f.name) {
			manifests = append(manifests, f)
		} else {
			media = append(media, f)
		}
	}
	up := &uploader{client: client, manifestCC: manifestCC}
	// 1. Segments and init sections, 2. the version's own playlists and MPD.
	for _, batch := range [][]stagedFile{media, manifests} {
		if err := up.putAll(ctx, vloc, batch); err != nil {
			return "", err
		}
	}
	// 3. The entry manifests at the prefix, pointing into the version folder: HLS, then DASH.
	for _, name := range []string{manifest.MasterPlaylist, manifest.DASHManifest} {
		i := slices.IndexFunc(files, func(f stagedFile) bool { return f.name == name })
		if i < 0 {
			continue // no MPD with aes-128
		}
		f := files[i]
		data, err := os.ReadFile(f.path)
		if err != nil {
			return "", &OutputError{Dir: loc.String(), Err: err}
		}
		if name == manifest.MasterPlaylist {
			data = rebaseHLS(data, version+"/")
		} else if data, err = rebaseMPD(data, version+"/"); err != nil {
			return "", &OutputError{Dir: loc.String(), Err: err}
		}
		etag, err := contentETag(ctx, strings.NewReader(string(data)), int64(len(data)))
		if err != nil {
			return "", err
		}
		entry := stagedFile{name: name, etag: etag, mtime: f.mtime, size: int64(len(data))}
		if err := up.put(ctx, loc, entry, data); err != nil {
			return "", err
		}
	}
	log.Info("uploaded", "to", loc.String(), "version", version, "objects", len(files)+2)
	return version, nil
}

func isManifest(name string) bool {
	ext := path.Ext(name)
	return ext == ".m3u8" || ext == ".mpd"
}

// stageList lists the packaged folder with each file's content ETag.
func stageList(ctx context.Context, dir string) ([]stagedFile, error) {
	var files []stagedFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		etag, err := contentETag(ctx, f, fi.Size())
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		files = append(files, stagedFile{name: filepath.ToSlash(rel), path: p, etag: etag, mtime: fi.ModTime().UnixNano(), size: fi.Size()})
		return nil
	})
	slices.SortFunc(files, func(a, b stagedFile) int { return strings.Compare(a.name, b.name) })
	return files, err
}

// versionName is v- and 16 hex digits of a hash of every file's name and content ETag.
func versionName(files []stagedFile) string {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.name + "\x00" + f.etag + "\n"))
	}
	return versionPrefix + hex.EncodeToString(h.Sum(nil))[:16]
}

type uploader struct {
	client     *s3.Client
	manifestCC string
}

// putAll uploads files under loc, s3Concurrency at a time; the first failure cancels the rest.
func (u *uploader) putAll(ctx context.Context, loc S3Location, files []stagedFile) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, s3Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, f := range files {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := u.put(ctx, loc, f, nil); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// put uploads one file (data, or the staged file when data is nil) with the Content-Type and
// Cache-Control `reel origin` would send and the metadata that gives the same ETag and
// Last-Modified when served from the bucket.
func (u *uploader) put(ctx context.Context, loc S3Location, f stagedFile, data []byte) error {
	key := loc.key(f.name)
	fail := func(err error) error {
		return &OutputError{Dir: "s3://" + loc.Bucket + "/" + key, Err: err}
	}
	if s3PutHook != nil {
		if err := s3PutHook(key); err != nil {
			return fail(err)
		}
	}
	ctype, cc := classify(f.name, u.manifestCC)
	in := &s3.PutObjectInput{
		Bucket:        &loc.Bucket,
		Key:           &key,
		ContentType:   &ctype,
		CacheControl:  &cc,
		ContentLength: aws.Int64(f.size),
		Metadata:      map[string]string{metaETag: f.etag, metaMtime: strconv.FormatInt(f.mtime, 10)},
	}
	if data != nil {
		in.Body = strings.NewReader(string(data))
	} else {
		file, err := os.Open(f.path)
		if err != nil {
			return fail(err)
		}
		defer file.Close()
		in.Body = file // seekable: the SDK rewinds it to retry
	}
	if _, err := u.client.PutObject(ctx, in); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return fail(context.Cause(ctx))
		}
		return fail(s3Error(err))
	}
	return nil
}

// hlsURI matches a URI attribute of an HLS tag.
var hlsURI = regexp.MustCompile(`URI="([^"]*)"`)

// rebaseHLS puts base before every relative URI of a playlist: the URI lines and the URI
// attributes of tags (absolute URIs, such as key servers', are left alone).
func rebaseHLS(data []byte, base string) []byte {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		switch {
		case l == "":
		case strings.HasPrefix(l, "#"):
			lines[i] = hlsURI.ReplaceAllStringFunc(l, func(m string) string {
				uri := m[len(`URI="`) : len(m)-1]
				if !isRelativeURI(uri) {
					return m
				}
				return `URI="` + base + uri + `"`
			})
		case isRelativeURI(strings.TrimSpace(l)):
			lines[i] = base + l
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// isRelativeURI reports a relative-path reference: no scheme, not absolute-path, not
// network-path (RFC 3986 §4.2).
func isRelativeURI(u string) bool {
	if u == "" || strings.HasPrefix(u, "/") {
		return false
	}
	colon := strings.IndexByte(u, ':')
	return colon < 0 || strings.ContainsAny(u[:colon], "/?#")
}

// rebaseMPD adds an MPD-level <BaseURL> (before the first Location, PatchLocation or Period,
// where the schema puts it), against which every relative URL of the MPD resolves.
func rebaseMPD(data []byte, base string) ([]byte, error) {
	s := string(data)
	if strings.Contains(s, "<BaseURL") {
		return nil, errors.New("manifest.mpd already has a BaseURL")
	}
	at := -1
	for _, tag := range []string{"<Location", "<PatchLocation", "<Period"} {
		if i := strings.Index(s, tag); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return nil, errors.New("manifest.mpd has no Period")
	}
	indent := ""
	if nl := strings.LastIndexByte(s[:at], '\n'); nl >= 0 && strings.TrimSpace(s[nl+1:at]) == "" {
		indent = s[nl+1 : at]
	}
	return []byte(s[:at] + "<BaseURL>" + base + "</BaseURL>\n" + indent + s[at:]), nil
}

// checkS3Output checks that the bucket exists and answers our credentials.
func checkS3Output(ctx context.Context, loc S3Location, opt *S3Options) error {
	client, err := newS3Client(ctx, opt)
	if err != nil {
		return &OutputError{Dir: loc.String(), Err: err}
	}
	return headBucket(ctx, client, loc)
}

// headBucket checks that the bucket exists and answers the client's credentials.
func headBucket(ctx context.Context, client *s3.Client, loc S3Location) error {
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &loc.Bucket}); err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			switch re.HTTPStatusCode() {
			case 404:
				err = errors.New("no such bucket")
			case 403:
				err = errors.New("access denied (check the credentials: AWS_ACCESS_KEY_ID, AWS_PROFILE)")
			default:
				err = s3Error(err)
			}
		}
		return &OutputError{Dir: "s3://" + loc.Bucket, Err: err}
	}
	return nil
}
