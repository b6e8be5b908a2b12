package publish_test

import (
	"testing"

	"github.com/evbank/bank/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
