package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Header names, as Standard Webhooks spells them.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// ErrBadSecret is wrapped when a secret is not "whsec_" followed by the
// standard base64 encoding of 24 to 64 bytes.
var ErrBadSecret = errors.New("bad webhook secret")

// NewSecret returns a fresh signing secret: "whsec_" and the base64 of 32
// random bytes.
func NewSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("new webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ParseSecret returns the key a secret stands for.
func ParseSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it must start with %q", ErrBadSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64: %w", ErrBadSecret, SecretPrefix, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("%w: it decodes to %d bytes; Standard Webhooks asks for 24 to 64", ErrBadSecret, len(key))
	}
	return key, nil
}

// Signer signs with every active secret of an endpoint. While a secret is
// being rotated, the endpoint has two active secrets (the new one first, the
// previous one until its grace window ends) and each delivery carries both
// signatures, space-separated, so receivers verify with either. Deciding
// which secrets are active belongs to whoever stores them.
type Signer struct {
	keys []*standardwebhooks.Webhook
}

// NewSigner returns a Signer for the given secrets, current first.
// Duplicates are signed with once.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no active secret", ErrBadSecret)
	}
	s := &Signer{}
	seen := make(map[string]bool, len(secrets))
	for i, sec := range secrets {
		key, err := ParseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		s.keys = append(s.keys, wh)
	}
	return s, nil
}

// Sign returns the webhook-signature value for one attempt: "v1,<base64>"
// per active secret, space-separated. The timestamp is truncated to
// seconds, as the header carries it.
func (s *Signer) Sign(id string, at time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(s.keys))
	for _, wh := range s.keys {
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", fmt.Errorf("sign webhook %s: %w", id, err)
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}
