// Package tenancy owns what tenants keep in the registry and how it becomes
// what runs: targets and their sealed credentials (SealTarget, OpenTarget),
// the typed object kinds (contact groups, alert policies, maintenance
// windows), loading every tenant's objects (Load) and resealing old rows
// (Reseal), the document shape they share with the config file
// (ToDocument, FromDocument), the routes the alert engine runs on
// (Routes) and config-as-code planning (Plan). api is its HTTP transport;
// app runs what it builds. It never imports api.
//
// A target's data (samples, incidents, state, outbox) belongs to its key
// (TargetInfo.Key), never reused; ids are per tenant.
package tenancy
