"""Which claims change verdict between two claims tables: the committed one (a CPU's) and one computed elsewhere, say
on a GPU box by scripts/gpu_check.sh. Prints a one-line summary, then the differing rows.

    python scripts/compare_claims.py results/claims.csv OTHER/claims.csv
"""

import sys

from advrepro.report import verdict_changes
from advrepro.store import read_claims

if __name__ == "__main__":
    line, changed = verdict_changes(read_claims(sys.argv[1]), read_claims(sys.argv[2]))
    print(line)
    if len(changed):
        print(changed.to_string(index=False))
