package claim

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestClaimIsExclusiveAndNamesTheHolder(t *testing.T) {
	name := fmt.Sprintf("test/%d/%d", os.Getpid(), time.Now().UnixNano())
	c, err := Take(name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Take(name)
	var h *Held
	if !errors.As(err, &h) || h.PID != int32(os.Getpid()) {
		t.Fatalf("second claim: %v", err)
	}
	t.Log(err)
	c.Release()
	c2, err := Take(name)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	c2.Release()
}

func TestLongNames(t *testing.T) {
	long := fmt.Sprintf("status/%d/%0200d", os.Getpid(), 7)
	c, err := Take(long)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := Take(long); err == nil {
		t.Error("a long name was claimed twice")
	}
	if c2, err := Take(long[:len(long)-1] + "8"); err != nil {
		t.Errorf("another long name: %v", err)
	} else {
		c2.Release()
	}
}

func TestSetTakesAllOrNothing(t *testing.T) {
	base := fmt.Sprintf("test/%d/%d/", os.Getpid(), time.Now().UnixNano())
	other, err := Take(base + "b")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	var s Set
	if err := s.Ensure([]string{base + "a", base + "b"}); err == nil {
		t.Fatal("took a held name")
	}
	// "a" was released again: someone else can take it.
	a, err := Take(base + "a")
	if err != nil {
		t.Fatalf("a kept after a failed Ensure: %v", err)
	}
	a.Release()
	if err := s.Ensure([]string{base + "a", base + "c"}); err != nil {
		t.Fatal(err)
	}
	s.Keep([]string{base + "c"})
	if a, err := Take(base + "a"); err != nil {
		t.Errorf("a not released by Keep: %v", err)
	} else {
		a.Release()
	}
	s.Release()
}
