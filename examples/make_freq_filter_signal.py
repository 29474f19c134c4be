"""Write examples/freq_filter_signal.csv: one second (50 samples at 50 Hz, freq_filter's training rate
and length) of 1, 3, 5 and 7 Hz sinusoids plus noise, as `seqpipe predict freq_filter --input` reads it.

    python examples/make_freq_filter_signal.py      # seeded: the same bytes every time
"""

from pathlib import Path

import numpy as np

RATE_HZ, SAMPLES = 50.0, 50
COMPONENTS = ((1.0, 1.2, 0.3), (3.0, 0.8, 1.1), (5.0, 1.0, 2.0), (7.0, 0.6, 0.5))   # Hz, amplitude, phase


def main() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLES) / RATE_HZ
    signal = sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in COMPONENTS) + rng.normal(0.0, 0.1, SAMPLES)
    rows = [f"{ti:.2f},{si:.6f}" for ti, si in zip(t, signal)]
    path = Path(__file__).with_name("freq_filter_signal.csv")
    path.write_text("time_s,signal\n" + "\n".join(rows) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
