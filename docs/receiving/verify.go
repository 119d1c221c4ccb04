// Verifies an octo-webhooks delivery (Standard Webhooks signature) with the Go
// standard library only. docs/receiving.md explains each step.
//
// Use Verify in your http.Handler with the raw request body (read it before
// any JSON decoding) and r.Header. Run as a program (go run verify.go), it
// reads one JSON object from stdin -- {"secret": "whsec_...", "headers":
// {...}, "body": "..."} -- and exits 0 when the signature verifies (the
// project's tests run it so).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Deliveries older (or newer) than this are refused.
const tolerance = 5 * time.Minute

// Verify returns nil when one of the webhook-signature values is the
// HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" under the secret.
func Verify(secret string, header http.Header, body []byte) error {
	id := header.Get("webhook-id")
	timestamp := header.Get("webhook-timestamp")
	signatures := header.Get("webhook-signature")
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sentAt, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if math.Abs(float64(time.Now().Unix()-sentAt)) > tolerance.Seconds() {
		return errors.New("webhook-timestamp is too old or in the future")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	expected := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	// Several space-separated "v1,<base64>" signatures during a secret rotation.
	for _, candidate := range strings.Split(signatures, " ") {
		version, signature, found := strings.Cut(candidate, ",")
		if found && version == "v1" && hmac.Equal([]byte(signature), expected) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func main() {
	var input struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "not verified: stdin is not the expected JSON:", err)
		os.Exit(1)
	}
	header := http.Header{}
	for name, value := range input.Headers {
		header.Set(name, value)
	}
	if err := Verify(input.Secret, header, []byte(input.Body)); err != nil {
		fmt.Fprintln(os.Stderr, "not verified:", err)
		os.Exit(1)
	}
	fmt.Println("verified:", header.Get("webhook-id"))
}
