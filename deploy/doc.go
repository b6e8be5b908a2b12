// Package deploy holds no code: its tests check the deployment files at the
// repository root (Dockerfile, .dockerignore, docker-compose.yml) and the
// README's configuration tables against what the binaries really read, so
// that they are checked on every test run although no container engine runs
// there.
package deploy
