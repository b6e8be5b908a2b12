package command

import "github.com/google/uuid"

// QueuedOn is how many commands wait in id's line in s, for tests that build
// a group of queued commands step by step.
func QueuedOn(s *Service, id uuid.UUID) int { return s.queues.waitingOn(id) }
