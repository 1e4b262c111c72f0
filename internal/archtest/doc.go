// Package archtest holds sitegm's import rules and size limits as a test
// (docs/architecture.md, "The rules"): a change that breaks one fails
// make test instead of waiting for a reviewer to notice.
package archtest
