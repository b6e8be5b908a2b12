// Package deploy reads the PromQL of the Grafana dashboard and the Prometheus
// alert rules (deploy/grafana, deploy/prometheus), for e2e to compare with
// the metrics the processes really expose. Its tests check the deployment
// files at the repository root (Dockerfile, .dockerignore, docker-compose.yml),
// the README's configuration tables against what the binaries really read, and
// the alert rules with promtool, so that they are checked on every test run
// although no container engine runs there.
package deploy
