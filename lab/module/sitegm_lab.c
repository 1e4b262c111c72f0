// SPDX-License-Identifier: GPL-2.0
/*
 * sitegm_lab: a PTP hardware clock and a 1PPS source for sitegm's kernel
 * lab. It stands in for a NIC's PHC with a GNSS receiver's pulse wired to
 * one of its pins (an i210's SDP0), so that sitegm's PHC, EXTTS, kernel
 * PPS and system-clock code runs against the kernel's own PTP and PPS
 * subsystems, and every figure can be judged against a truth that nothing
 * in the guest can steer.
 *
 * Time model (all from CLOCK_MONOTONIC_RAW, which nobody adjusts):
 *   truth(raw) = truth0 + (raw - raw0)                 TAI, ns
 *   phc(raw)   = base_phc + (raw - base_raw) * (1 + (nat + adj) / 1e12)
 * truth0 is CLOCK_REALTIME at load plus tai_utc seconds; the PHC starts on
 * CLOCK_REALTIME (UTC, as igb starts an i210's), so a clock that forgets
 * the TAI-UTC offset is 37 s off. nat is the oscillator's natural error
 * (freq_error_ppb), adj what adjfine asked (both in parts per 10^12); each
 * adjustment re-anchors (base_raw, base_phc) so the line stays continuous.
 *
 * The pulse: at every whole second S of the truth, a rising edge (plus
 * delay_ns, as an antenna cable delays a receiver's pulse, and gaussian
 * jitter_ns noise and a qerr_ns sawtooth, as a receiver's pulse has) and
 * a falling edge width_ms later. Each edge is an EXTTS event on
 * every enabled channel (the PHC's time at the edge) and a PPS event on
 * /dev/ppsN (CLOCK_REALTIME at the edge): assert for rising, clear for
 * falling. The timer fires 100 µs after each edge, as the interrupt of a
 * real pulse would; the stamps are computed for the edges' instants, not
 * for when the timer ran.
 *
 * Like igb on an i210, a PTP_EXTTS_REQUEST2 for one edge only is refused
 * (PTP_STRICT_FLAGS): a caller must ask for both and keep the one it
 * wants. EXTTS needs its pin routed to the channel (PTP_PIN_SETFUNC).
 *
 * With phcs=2 a second PHC stands in for another NIC's (the secondary
 * network of a redundant Dante site): its own natural error
 * (freq_error2_ppb), no pins, no EXTTS; it starts on CLOCK_REALTIME too.
 *
 * debugfs (sitegm_lab/):
 *   now          read: "raw_ns truth_ns phc_ns realtime_ns phc1_ns" at one
 *                instant (phc1_ns 0 without a second PHC)
 *   pulses       write 0 / 1: stop / resume the pulse
 *   fail_reads   write N: the next N reads of the PHC fail with -EIO
 *   step_phc     write ns: someone else steps the PHC by that much
 *   step_phc1    write ns: the same for the second PHC
 *   edges        read: pulses emitted, EXTTS events, PPS events
 */
#include <linux/debugfs.h>
#include <linux/hrtimer.h>
#include <linux/module.h>
#include <linux/pps_kernel.h>
#include <linux/ptp_clock_kernel.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>

static long freq_error_ppb = 25000;
module_param(freq_error_ppb, long, 0444);
MODULE_PARM_DESC(freq_error_ppb, "natural frequency error of the PHC, ppb");
static uint width_ms = 100;
module_param(width_ms, uint, 0444);
MODULE_PARM_DESC(width_ms, "pulse width, ms (1..900)");
static uint jitter_ns = 20;
module_param(jitter_ns, uint, 0444);
MODULE_PARM_DESC(jitter_ns, "standard deviation of the edge noise, ns");
static uint qerr_ns;
module_param(qerr_ns, uint, 0444);
MODULE_PARM_DESC(qerr_ns, "amplitude of the receiver's sawtooth, ns");
static int tai_utc = 37;
module_param(tai_utc, int, 0444);
MODULE_PARM_DESC(tai_utc, "TAI-UTC, s: truth is CLOCK_REALTIME at load plus this");
static long delay_ns;
module_param(delay_ns, long, 0444);
static uint phcs = 1;
module_param(phcs, uint, 0444);
MODULE_PARM_DESC(phcs, "PTP hardware clocks: 1, or 2 (the second without pins)");
static long freq_error2_ppb = -15000;
module_param(freq_error2_ppb, long, 0444);
MODULE_PARM_DESC(freq_error2_ppb, "natural frequency error of the second PHC, ppb");
MODULE_PARM_DESC(delay_ns, "the pulse reaches the pin this late after its second, ns (an antenna cable; -50000..50000, inside the 100 us before the edge is reported)");

#define N_CHANNELS 2
#define PPT_PER_SCALED_PPM 1000000 /* scaled_ppm is ppm * 2^16 */

/* labclk is one PHC: its ops and its line (under the lab's lock). */
struct labclk {
	struct ptp_clock_info info;
	struct ptp_clock *ptp;
	struct lab *lab;
	s64 base_raw, base_phc;	/* the PHC's line */
	s64 nat_ppt, adj_ppt;	/* frequency errors, parts per 10^12 */
	int fail_reads;
};

struct lab {
	struct labclk clk[2];
	struct ptp_clock *ptp;	/* clk[0].ptp: the one with the pulse */
	struct pps_device *pps;
	struct ptp_pin_desc pins[N_CHANNELS];
	struct hrtimer timer;
	struct dentry *dir;
	spinlock_t lock;
	s64 raw0, truth0;	/* truth at raw0 */
	u32 extts_on;		/* bit per enabled channel */
	u32 extts_flags[N_CHANNELS];
	bool pulses;
	s64 next_second;	/* truth second of the next pulse */
	bool falling_next;	/* its rising edge was reported */
	s64 lead;		/* raw time of that rising edge */
	u64 n_pulses, n_extts, n_pps;
};

static struct lab *lab;

static s64 raw_ns(void)
{
	return ktime_get_raw_ns();
}

/*
 * raw_and_real reads CLOCK_MONOTONIC_RAW and CLOCK_REALTIME at one
 * instant: the realtime read bracketed by two raw reads, paired with their
 * middle, best of five (under emulation each read costs microseconds, and
 * the host may stall the guest between two reads for a hundred: pairing
 * two reads made one after the other biased stamps by that much).
 */
static void raw_and_real(s64 *raw, s64 *real)
{
	s64 best = S64_MAX;
	int i;

	for (i = 0; i < 5; i++) {
		s64 a = raw_ns(), r = ktime_get_real_ns(), b = raw_ns();

		if (b - a < best) {
			best = b - a;
			*raw = a + (b - a) / 2;
			*real = r;
		}
	}
}

/* clk_at is a PHC's time at raw time raw (lock held). */
static s64 clk_at(struct labclk *c, s64 raw)
{
	s64 d = raw - c->base_raw, ppt = c->nat_ppt + c->adj_ppt;
	s64 q = div_s64(d, NSEC_PER_SEC), r = d - q * NSEC_PER_SEC;

	/* d * ppt / 1e12 without overflow: whole seconds, then the rest. */
	return c->base_phc + d + div_s64(q * ppt, 1000) + div64_s64(r * ppt, 1000000000000LL);
}

/* phc_at is the first PHC's (the pulse's) time at raw (lock held). */
static s64 phc_at(struct lab *l, s64 raw)
{
	return clk_at(&l->clk[0], raw);
}

static s64 truth_at(struct lab *l, s64 raw)
{
	return l->truth0 + (raw - l->raw0);
}

/* rebase re-anchors a PHC's line at raw (before a change of rate). */
static void rebase(struct labclk *c, s64 raw)
{
	c->base_phc = clk_at(c, raw);
	c->base_raw = raw;
}

static int lab_adjfine(struct ptp_clock_info *info, long scaled_ppm)
{
	struct labclk *c = container_of(info, struct labclk, info);
	unsigned long flags;

	spin_lock_irqsave(&c->lab->lock, flags);
	rebase(c, raw_ns());
	c->adj_ppt = div_s64((s64)scaled_ppm * PPT_PER_SCALED_PPM, 65536);
	spin_unlock_irqrestore(&c->lab->lock, flags);
	return 0;
}

static int lab_adjtime(struct ptp_clock_info *info, s64 delta)
{
	struct labclk *c = container_of(info, struct labclk, info);
	unsigned long flags;

	spin_lock_irqsave(&c->lab->lock, flags);
	rebase(c, raw_ns());
	c->base_phc += delta;
	spin_unlock_irqrestore(&c->lab->lock, flags);
	return 0;
}

static int lab_gettimex64(struct ptp_clock_info *info, struct timespec64 *ts,
			  struct ptp_system_timestamp *sts)
{
	struct labclk *c = container_of(info, struct labclk, info);
	struct lab *l = c->lab;
	unsigned long flags;
	s64 t;

	spin_lock_irqsave(&l->lock, flags);
	if (c->fail_reads > 0) {
		c->fail_reads--;
		spin_unlock_irqrestore(&l->lock, flags);
		return -EIO;
	}
	/* The system reads bracket the PHC read as a NIC driver's do. */
	ptp_read_system_prets(sts);
	t = clk_at(c, raw_ns());
	ptp_read_system_postts(sts);
	spin_unlock_irqrestore(&l->lock, flags);
	*ts = ns_to_timespec64(t);
	return 0;
}

static int lab_settime64(struct ptp_clock_info *info, const struct timespec64 *ts)
{
	struct labclk *c = container_of(info, struct labclk, info);
	unsigned long flags;

	spin_lock_irqsave(&c->lab->lock, flags);
	c->base_raw = raw_ns();
	c->base_phc = timespec64_to_ns(ts);
	spin_unlock_irqrestore(&c->lab->lock, flags);
	return 0;
}

static int lab_enable(struct ptp_clock_info *info, struct ptp_clock_request *rq, int on)
{
	struct labclk *c = container_of(info, struct labclk, info);
	struct lab *l = c->lab;
	unsigned long flags;
	unsigned int ch;

	if (rq->type != PTP_CLK_REQ_EXTTS || c != &l->clk[0])
		return -EOPNOTSUPP;
	ch = rq->extts.index;
	if (ch >= N_CHANNELS)
		return -EINVAL;
	/* As igb: under strict checking only both edges together. */
	if (on && (rq->extts.flags & PTP_STRICT_FLAGS) &&
	    (rq->extts.flags & PTP_EXTTS_EDGES) != PTP_EXTTS_EDGES)
		return -EOPNOTSUPP;
	if (on && ptp_find_pin(l->ptp, PTP_PF_EXTTS, ch) < 0)
		return -EBUSY;
	spin_lock_irqsave(&l->lock, flags);
	if (on) {
		l->extts_on |= BIT(ch);
		l->extts_flags[ch] = rq->extts.flags & PTP_EXTTS_EDGES;
		if (!l->extts_flags[ch]) /* the old ioctl: both edges */
			l->extts_flags[ch] = PTP_EXTTS_EDGES;
	} else {
		l->extts_on &= ~BIT(ch);
	}
	spin_unlock_irqrestore(&l->lock, flags);
	return 0;
}

static int lab_verify(struct ptp_clock_info *info, unsigned int pin,
		      enum ptp_pin_function func, unsigned int chan)
{
	switch (func) {
	case PTP_PF_NONE:
	case PTP_PF_EXTTS:
		return chan < N_CHANNELS ? 0 : -EINVAL;
	default:
		return -EOPNOTSUPP;
	}
}

/* noise is a gaussian-like sample (the sum of four uniforms) of deviation sd. */
static s64 noise(u32 sd)
{
	s64 sum = 0;
	int i;

	if (!sd)
		return 0;
	for (i = 0; i < 4; i++)
		sum += (s64)(get_random_u32() % 2000001) - 1000000;
	/* Four uniforms on [-1e6, 1e6] have a deviation of 1.1547e6. */
	return div_s64(sum * sd, 1154700);
}

/* edge emits one edge that happened at raw time raw. */
static void edge(struct lab *l, s64 raw, bool rising, s64 real_now, s64 raw_now)
{
	struct ptp_clock_event ev = { .type = PTP_CLOCK_EXTTS };
	struct pps_event_time pt = {};
	unsigned long flags;
	s64 phc;
	u32 on;
	int ch;

	spin_lock_irqsave(&l->lock, flags);
	phc = phc_at(l, raw);
	on = l->extts_on;
	spin_unlock_irqrestore(&l->lock, flags);
	for (ch = 0; ch < N_CHANNELS; ch++) {
		if (!(on & BIT(ch)) ||
		    !(l->extts_flags[ch] & (rising ? PTP_RISING_EDGE : PTP_FALLING_EDGE)))
			continue;
		ev.index = ch;
		ev.timestamp = phc;
		ptp_clock_event(l->ptp, &ev);
		l->n_extts++;
	}
	/* CLOCK_REALTIME at the edge: now, less the time since. */
	pt.ts_real = ns_to_timespec64(real_now - (raw_now - raw));
	pps_event(l->pps, &pt, rising ? PPS_CAPTUREASSERT : PPS_CAPTURECLEAR, NULL);
	l->n_pps++;
}

/* arm sets the timer 100 µs after the next edge: rising or falling. */
static void arm(struct lab *l)
{
	s64 raw = l->raw0 + (l->next_second * NSEC_PER_SEC - l->truth0);
	s64 at, wait;

	if (l->falling_next)
		raw += (s64)width_ms * NSEC_PER_MSEC;
	at = raw + 100 * NSEC_PER_USEC;
	wait = at - raw_ns();
	hrtimer_start(&l->timer, ktime_add_ns(ktime_get(), max_t(s64, wait, 0)), HRTIMER_MODE_ABS);
}

/*
 * pulse runs just after each edge and reports it, as an interrupt would:
 * the rising edge of second next_second, then its falling edge width_ms
 * later, then the next second's.
 */
static enum hrtimer_restart pulse(struct hrtimer *t)
{
	struct lab *l = container_of(t, struct lab, timer);
	s64 edge_raw = l->raw0 + (l->next_second * NSEC_PER_SEC - l->truth0);
	s64 raw_now, real_now, saw = 0;

	raw_and_real(&raw_now, &real_now);
	if (!l->falling_next) {
		if (qerr_ns)
			saw = (s64)(l->next_second % 17) * 2 * qerr_ns / 16 - qerr_ns;
		l->lead = edge_raw + delay_ns + noise(jitter_ns) + saw;
		if (l->pulses) {
			edge(l, l->lead, true, real_now, raw_now);
			l->n_pulses++;
		}
		l->falling_next = true;
	} else {
		if (l->pulses)
			edge(l, l->lead + (s64)width_ms * NSEC_PER_MSEC, false, real_now, raw_now);
		l->falling_next = false;
		/* The next whole second still ahead: a timer late by more than
		 * a second skips pulses, as a receiver that lost them would. */
		l->next_second = div_s64(truth_at(l, raw_ns()), NSEC_PER_SEC) + 1;
	}
	arm(l);
	return HRTIMER_NORESTART;
}

static int now_show(struct seq_file *m, void *unused)
{
	unsigned long flags;
	s64 raw, real, phc, phc1 = 0;

	spin_lock_irqsave(&lab->lock, flags);
	raw_and_real(&raw, &real);
	phc = phc_at(lab, raw);
	if (phcs > 1)
		phc1 = clk_at(&lab->clk[1], raw);
	spin_unlock_irqrestore(&lab->lock, flags);
	seq_printf(m, "%lld %lld %lld %lld %lld\n", raw, truth_at(lab, raw), phc, real, phc1);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(now);

static int edges_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "%llu %llu %llu\n", lab->n_pulses, lab->n_extts, lab->n_pps);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(edges);

static ssize_t write_s64(const char __user *buf, size_t len, s64 *v)
{
	int err = kstrtos64_from_user(buf, len, 0, v);

	return err ? err : len;
}

static ssize_t pulses_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	s64 v;
	ssize_t n = write_s64(buf, len, &v);

	if (n > 0)
		WRITE_ONCE(lab->pulses, v != 0);
	return n;
}

static ssize_t fail_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	unsigned long flags;
	s64 v;
	ssize_t n = write_s64(buf, len, &v);

	if (n > 0) {
		spin_lock_irqsave(&lab->lock, flags);
		lab->clk[0].fail_reads = clamp_t(s64, v, 0, 1000000);
		spin_unlock_irqrestore(&lab->lock, flags);
	}
	return n;
}

static ssize_t step_clk(struct labclk *c, const char __user *buf, size_t len)
{
	unsigned long flags;
	s64 v;
	ssize_t n = write_s64(buf, len, &v);

	if (n > 0) {
		spin_lock_irqsave(&lab->lock, flags);
		c->base_phc += v;
		spin_unlock_irqrestore(&lab->lock, flags);
	}
	return n;
}

static ssize_t step_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	return step_clk(&lab->clk[0], buf, len);
}

static ssize_t step1_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	return step_clk(&lab->clk[1], buf, len);
}

static const struct file_operations pulses_fops = { .owner = THIS_MODULE, .write = pulses_write };
static const struct file_operations fail_fops = { .owner = THIS_MODULE, .write = fail_write };
static const struct file_operations step_fops = { .owner = THIS_MODULE, .write = step_write };
static const struct file_operations step1_fops = { .owner = THIS_MODULE, .write = step1_write };

static int __init lab_init(void)
{
	struct pps_source_info pinfo = {
		.name = "sitegm_lab",
		.path = "",
		.mode = PPS_CAPTUREBOTH | PPS_OFFSETASSERT | PPS_OFFSETCLEAR | PPS_CANWAIT | PPS_TSFMT_TSPEC,
		.owner = THIS_MODULE,
	};
	s64 raw, real;
	int i, err;

	if (width_ms < 1 || width_ms > 900 || delay_ns < -50000 || delay_ns > 50000 || phcs < 1 || phcs > 2)
		return -EINVAL;
	lab = kzalloc(sizeof(*lab), GFP_KERNEL);
	if (!lab)
		return -ENOMEM;
	spin_lock_init(&lab->lock);
	raw_and_real(&raw, &real);
	lab->raw0 = raw;
	lab->truth0 = real + (s64)tai_utc * NSEC_PER_SEC;
	lab->pulses = true;
	for (i = 0; i < N_CHANNELS; i++) {
		snprintf(lab->pins[i].name, sizeof(lab->pins[i].name), "SDP%d", i);
		lab->pins[i].index = i;
		lab->pins[i].func = PTP_PF_NONE;
		lab->pins[i].chan = i;
	}
	for (i = 0; i < phcs; i++) {
		struct labclk *c = &lab->clk[i];

		c->lab = lab;
		c->base_raw = raw;
		c->base_phc = real; /* starts on UTC, as igb starts a PHC */
		c->nat_ppt = (s64)(i == 0 ? freq_error_ppb : freq_error2_ppb) * 1000;
		c->info = (struct ptp_clock_info){
			.owner = THIS_MODULE,
			.max_adj = 62499999, /* an i210's */
			.adjfine = lab_adjfine,
			.adjtime = lab_adjtime,
			.gettimex64 = lab_gettimex64,
			.settime64 = lab_settime64,
			.enable = lab_enable,
			.verify = lab_verify,
		};
		snprintf(c->info.name, sizeof(c->info.name), i == 0 ? "sitegm_lab" : "sitegm_lab%d", i);
		if (i == 0) {
			c->info.n_ext_ts = N_CHANNELS;
			c->info.n_pins = N_CHANNELS;
			c->info.pin_config = lab->pins;
		}
		c->ptp = ptp_clock_register(&c->info, NULL);
		if (IS_ERR(c->ptp)) {
			err = PTR_ERR(c->ptp);
			c->ptp = NULL;
			goto fail;
		}
	}
	lab->ptp = lab->clk[0].ptp;
	lab->pps = pps_register_source(&pinfo, PPS_CAPTUREBOTH | PPS_OFFSETASSERT);
	if (IS_ERR(lab->pps)) {
		err = PTR_ERR(lab->pps);
		goto fail;
	}
	lab->dir = debugfs_create_dir("sitegm_lab", NULL);
	debugfs_create_file("now", 0444, lab->dir, NULL, &now_fops);
	debugfs_create_file("edges", 0444, lab->dir, NULL, &edges_fops);
	debugfs_create_file("pulses", 0200, lab->dir, NULL, &pulses_fops);
	debugfs_create_file("fail_reads", 0200, lab->dir, NULL, &fail_fops);
	debugfs_create_file("step_phc", 0200, lab->dir, NULL, &step_fops);
	if (phcs > 1)
		debugfs_create_file("step_phc1", 0200, lab->dir, NULL, &step1_fops);
	hrtimer_init(&lab->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	lab->timer.function = pulse;
	lab->next_second = div_s64(truth_at(lab, raw_ns()), NSEC_PER_SEC) + 1;
	arm(lab);
	pr_info("sitegm_lab: PHC %d, PPS %d, freq error %ld ppb, width %u ms, jitter %u ns, qerr %u ns\n",
		ptp_clock_index(lab->ptp), lab->pps->id, freq_error_ppb, width_ms, jitter_ns, qerr_ns);
	if (phcs > 1)
		pr_info("sitegm_lab: second PHC %d, freq error %ld ppb\n", ptp_clock_index(lab->clk[1].ptp), freq_error2_ppb);
	return 0;
fail:
	for (i = 0; i < 2; i++)
		if (lab->clk[i].ptp)
			ptp_clock_unregister(lab->clk[i].ptp);
	kfree(lab);
	return err;
}

static void __exit lab_exit(void)
{
	int i;

	hrtimer_cancel(&lab->timer);
	debugfs_remove_recursive(lab->dir);
	pps_unregister_source(lab->pps);
	for (i = 0; i < 2; i++)
		if (lab->clk[i].ptp)
			ptp_clock_unregister(lab->clk[i].ptp);
	kfree(lab);
}

module_init(lab_init);
module_exit(lab_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("sitegm lab: steerable PHCs with a simulated GNSS 1PPS (EXTTS and kernel PPS)");
