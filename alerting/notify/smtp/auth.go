package smtp

import "encoding/base64"

// credentialForms lists the ways a broken server could echo the password
// back: plain, and base64 of the password and of the PLAIN blob.
func credentialForms(user, pass string) []string {
	return []string{
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass)),
		base64.StdEncoding.EncodeToString([]byte(pass)),
		pass,
	}
}
