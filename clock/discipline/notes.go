package discipline

import (
	"fmt"
	"log/slog"
	"time"

	"sitegm/clock/servo"
	"sitegm/event"
)

// This file says what the servo's notes mean for the clock: steps, jumps
// and rejected samples, as events, and before the first lock a start
// that begins again.

// RestartAfter is how many samples in a row the servo may reject before
// the first lock before its start begins again. A start cut short by a
// stall (the kernel lab's guest starved for 5 s while the PHC's rate
// moved) can leave the servo sure of a frequency 18 ppm wrong: every
// later sample then lies beyond its holdover gate and ramps away from the
// one before, so no three agree as a jump, and the clock sat in holdover
// for good, rejecting a good reference. Before the first lock (and while
// no NTP upstreams make the clock synchronized, as for jump_before_lock)
// nothing was served as synchronized and there is nothing to guard; ten seconds of
// rejections is no noise of a pulse (the gate is five sigmas).
const RestartAfter = 10

func (d *Discipline) note(a servo.Action) {
	if a.Note != servo.NoteOutlier {
		d.rejectRow = 0
	}
	switch a.Note {
	case servo.NoteStepped:
		d.stepped = true
		d.steps++
		d.lastStep = a.Step
		d.emit(event.Notice, "clock_stepped", "clock stepped onto GNSS time", "step", a.Step.String())
	case servo.NoteOutlier:
		d.outliers++
		if d.rejectRow++; d.rejectRow >= RestartAfter && !d.q.EverLocked() && !d.q.Synchronized() {
			d.rejectRow = 0
			d.srv.Restart()
			d.emit(event.Notice, "start_restarted", fmt.Sprintf("%d samples in a row disagreed with the clock's start before the first lock: it begins again", RestartAfter),
				"last_offset", a.Offset.String())
		}
	case servo.NoteJump:
		if !d.q.EverLocked() && !d.q.Synchronized() {
			// Before the first lock the clock has served no synchronized
			// time (clockClass 248, NTP LI 3), so the guard protects no
			// follower; and a jump seen so soon says the start went
			// wrong (a wrong second, or a frequency it was sure of and
			// should not have been: its ramp looks like a jump), not
			// GNSS. The guard then never agreed with GNSS again, and
			// following the jump kept the wrong frequency and found the
			// next jump seconds later: the start begins again from the
			// next sample, its frequency learned afresh.
			d.srv.Restart()
			d.emit(event.Notice, "jump_before_lock", fmt.Sprintf("GNSS time moved by %v before the first lock: the clock's start begins again", a.Offset),
				"jump", a.Offset.String())
			return
		}
		d.emit(slog.LevelError, "jump_alarm", fmt.Sprintf("GNSS time jumped by %v: not followed, holding over", a.Offset),
			"jump", a.Offset.String(), "follow_after", followText(d.cfg.FollowJumps))
	case servo.NoteJumpOver:
		d.emit(event.Notice, "jump_over", "GNSS time agrees with the clock again")
	case servo.NoteJumpFollow:
		d.steps++
		d.lastStep = a.Step
		d.emit(slog.LevelWarn, "jump_followed", fmt.Sprintf("followed a persistent new GNSS time: stepped %v", a.Step),
			"step", a.Step.String())
	}
}

func followText(d time.Duration) string {
	if d <= 0 {
		return "never (operator resync only)"
	}
	return d.String()
}
