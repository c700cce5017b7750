// Package grafana holds no Go code of its own: it ships upwatch's Grafana
// provisioning (provisioning/) and dashboards (dashboards/*.json). Its tests
// check the dashboards' structure, parse every PromQL expression, and run
// every panel query against a real Prometheus that scraped a live upwatch
// and, when one is given, a real InfluxDB.
package grafana
