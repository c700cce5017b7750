// Package browser holds upwatch's real-browser tests (issue 13): the
// whole service runs in-process on 127.0.0.1 and Debian's headless
// Chromium, driven over the DevTools protocol with chromedp, signs in,
// watches a target go down without a reload, acknowledges the incident,
// creates a maintenance window, signs out and reads a public status page.
//
// The tests skip without /usr/bin/chromium (or $UPWATCH_CHROMIUM) unless
// UPWATCH_REQUIRE_CHROMIUM is set, as .ci/run does after installing it
// with .ci/services/chromium.sh. Screenshots go to $UPWATCH_ARTIFACTS_DIR
// (else a temporary dir); with $UPWATCH_DOCS_IMAGES set (`make
// screenshots`) the README's pictures are written there too.
package browser
