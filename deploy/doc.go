// Package deploy holds no Go code of its own: it ships the Dockerfile, the
// Prometheus config and alert rules, and the config the docker-compose stack
// mounts. Its tests check them with promtool, docker-compose and the upwatch
// binary where those are available, and by structure otherwise.
package deploy
