// Package access decides who, besides the users the sites collection's
// rules admit, may read a site's statistics: anyone with one of its share
// links (collection `shares`) and scripts with an API key (collection
// `api_keys`). Both are looked up on every request, so deleting the record
// revokes the access at once.
//
// A share link is read with the query parameters share=TOKEN and, when the
// share has a password, proof=PROOF (the answer of the unlock route, so the
// password is checked once, not per request). The same parameters go into
// the options of a live topic subscription:
//
//	pb.realtime.subscribe("analytics/live/" + siteId, cb, {query: {share, proof}})
//
// An API key is sent as "Authorization: Bearer plk_…". PocketBase ignores
// it (it is no auth token), so it opens the analytics routes and nothing else.
package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"
	"golang.org/x/crypto/bcrypt"

	"github.com/pocketlytics/pocketlytics/migrations"
)

// Query parameters of a share link.
const (
	ShareParam = "share"
	ProofParam = "proof"
)

// Collections, by their fixed ids.
const (
	SharesCollection      = migrations.SharesCollectionId
	APIKeysCollection     = migrations.APIKeysCollectionId
	InvitationsCollection = migrations.InvitationsCollectionId
)

// TokenLength is the length of a share token or an invitation's: 40
// characters of 62 (238 bits).
const TokenLength = 40

// KeyPrefix starts every API key, so a key is told from a PocketBase auth
// token (a JWT) without a lookup.
const KeyPrefix = "plk_"

// NewToken returns a new share or invitation token.
func NewToken() string { return security.RandomString(TokenLength) }

// NewKey returns a new API key and the hash stored in its place.
func NewKey() (key, hash string) {
	key = KeyPrefix + security.RandomString(40)
	return key, HashKey(key)
}

// HashKey returns the stored form of an API key. Keys are random and long,
// so a plain SHA-256 is enough and lets a key be found by its hash.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ErrNoShare is returned for a token of no share, or of one that expired.
var ErrNoShare = errors.New("access: no such share")

// FindShare returns the unexpired share of token.
func FindShare(app core.App, token string) (*core.Record, error) {
	if len(token) != TokenLength {
		return nil, ErrNoShare
	}
	r, err := app.FindFirstRecordByData(SharesCollection, "token", token)
	if err != nil {
		return nil, ErrNoShare
	}
	if Expired(r, time.Now()) {
		return nil, ErrNoShare
	}
	return r, nil
}

// Expired reports whether the share's expiry is past at now.
func Expired(share *core.Record, now time.Time) bool {
	exp := share.GetDateTime("expires")
	return !exp.IsZero() && !now.Before(exp.Time())
}

// HasPassword reports whether viewers of the share must unlock it first.
func HasPassword(share *core.Record) bool { return share.GetString("password:hash") != "" }

// CheckPassword reports whether password unlocks the share.
func CheckPassword(share *core.Record, password string) bool {
	hash := share.GetString("password:hash")
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// Proof is what a viewer who gave the share's password sends with each
// request instead of it: an HMAC of the token keyed by the stored hash, so
// changing the password voids the proofs given out for the old one.
func Proof(share *core.Record) string {
	mac := hmac.New(sha256.New, []byte(share.GetString("password:hash")))
	mac.Write([]byte(share.GetString("token")))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Unlocked reports whether a request with proof may use the share.
func Unlocked(share *core.Record, proof string) bool {
	if !HasPassword(share) {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(proof), []byte(Proof(share))) == 1
}

// ShareOpens reports whether the share parameters in query open the site's
// statistics; live asks for the live view too, which a share opens only
// with its live flag.
func ShareOpens(app core.App, siteID string, query map[string]string, live bool) bool {
	token := query[ShareParam]
	if token == "" {
		return false
	}
	share, err := FindShare(app, token)
	if err != nil || share.GetString("site") != siteID || (live && !share.GetBool("live")) {
		return false
	}
	return Unlocked(share, query[ProofParam])
}

// BearerKey returns the API key of an Authorization header, if it holds one.
func BearerKey(header string) (string, bool) {
	if len(header) > 7 && strings.EqualFold(header[:7], "Bearer ") {
		header = header[7:]
	}
	if !strings.HasPrefix(header, KeyPrefix) || len(header) > 100 {
		return "", false
	}
	return header, true
}

// lastUsedStep is how stale an API key's lastUsed may get: a busy script
// costs a write a minute, not one per request.
const lastUsedStep = time.Minute

// KeyOpens reports whether the API key opens the site's statistics: the key
// lists the site and its owner may still see the site under the sites
// collection's view rule (a key never reads more than its owner).
func KeyOpens(app core.App, siteID, key string) bool {
	r, err := app.FindFirstRecordByData(APIKeysCollection, "hash", HashKey(key))
	if err != nil || !slices.Contains(r.GetStringSlice("sites"), siteID) {
		return false
	}
	owner, err := app.FindRecordById("users", r.GetString("owner"))
	if err != nil {
		return false
	}
	site, err := app.FindRecordById(migrations.SitesCollectionId, siteID)
	if err != nil {
		return false
	}
	info := &core.RequestInfo{Auth: owner, Query: map[string]string{}, Headers: map[string]string{}, Body: map[string]any{}}
	if ok, err := app.CanAccessRecord(site, info, site.Collection().ViewRule); err != nil || !ok {
		return false
	}

	now := time.Now()
	if last := r.GetDateTime("lastUsed"); last.IsZero() || now.Sub(last.Time()) >= lastUsedStep {
		r.Set("lastUsed", now)
		if err := app.SaveNoValidate(r); err != nil {
			app.Logger().Warn("access: recording an API key's use failed", "key", r.Id, "error", err)
		}
	}
	return true
}
