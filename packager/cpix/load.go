package cpix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// FetchTimeout bounds a key server's answer, headers and body.
const FetchTimeout = 30 * time.Second

// Load reads a CPIX document from a file, or fetches it from an https:// URL (http:// only to
// a loopback host: a plain connection elsewhere would expose the keys and the token) with
// token, when not empty, as a bearer token. The document is at most MaxSize bytes; a key
// server's answer other than 2xx is an error with its status. client nil means a default one.
func Load(ctx context.Context, src, token string, client *http.Client) (*Document, error) {
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return Parse(f)
	}
	data, err := fetch(ctx, src, token, client)
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(data))
}

func fetch(ctx context.Context, src, token string, client *http.Client) ([]byte, error) {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("not a URL: %q", src)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, errors.New("plain http only to a loopback host: the keys and the token would cross the network in clear (use https)")
	}
	if u.User != nil {
		return nil, errors.New("credentials in the URL: give a bearer token instead")
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/xml, text/xml")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL, never the token (it is in a header).
		return nil, fmt.Errorf("key server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("key server answered %s", resp.Status)
	}
	if resp.ContentLength > MaxSize {
		return nil, fmt.Errorf("key server's answer is %d bytes, more than the %d MiB a CPIX document may have", resp.ContentLength, MaxSize>>20)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("key server: reading the answer: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("key server's answer is more than the %d MiB a CPIX document may have", MaxSize>>20)
	}
	return data, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
