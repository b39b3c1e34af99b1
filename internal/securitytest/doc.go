// Package securitytest holds microshop's security tests: the JWT attack
// matrix, one test per item of the OWASP API Security Top 10 (2023) that
// applies, and a fuzz target for bearer tokens. The tests start the real
// system in process, either as separate services each on its own loopback
// listener with real HTTP between them, or as the monolith, and attack it
// from outside: through the gateway and directly at each service's port.
//
// The package has no non-test code; docs/security.md maps each test to what
// it proves.
package securitytest
