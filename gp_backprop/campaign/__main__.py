"""``python -m gp_backprop.campaign campaigns/<name>.toml [--resume] [--redo STAGE]``: a discovery campaign as one
command (parser and main; the stages are ``runner.run_campaign``). A mistake is one line on stderr and exit code 2."""
from __future__ import annotations

import sys

from gp_backprop.campaign.retest import STAGES
from gp_backprop.campaign.runner import run_campaign
from gp_backprop.campaign.searches import Stopped
from gp_backprop.campaign.spec import Campaign, load
from gp_backprop.cli import OneLineParser, fail, interrupted_code, stop_on_sigterm
from gp_backprop.config import ConfigError, flatten
from gp_backprop.parallel import BackendError
from gp_backprop.search import CheckpointError
from gp_backprop.tracking import RecordError, TrackingError

PROG = "campaign"


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m gp_backprop.campaign", allow_abbrev=False,
                      description="Run a discovery campaign: several searches, the funnel of their pooled top rules "
                                  "against the controls, transfer setups, and a results folder with its README.")
    p.add_argument("file", help="the campaign file (TOML), e.g. campaigns/mnist1d.toml")
    p.add_argument("--resume", action="store_true", help="continue a campaign that stopped (a kill, Ctrl-C)")
    p.add_argument("--overwrite", action="store_true", help="start the campaign and its searches again")
    p.add_argument("--redo", action="append", default=[], choices=STAGES, metavar="STAGE",
                   help="train a re-test stage again (funnel or transfer; repeatable), e.g. after a fix to its code; "
                        "the searches and the other stage are kept")
    p.add_argument("--check", action="store_true", help="check the file, print the searches' settings and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stop_on_sigterm()
    try:
        if args.overwrite and (args.resume or args.redo):
            flag = "--resume" if args.resume else "--redo"
            raise ConfigError(f"{flag} and --overwrite contradict each other; use one")
        campaign = load(args.file)
        if args.check:
            _show(campaign)
            return 0
        text = run_campaign(campaign, resume=args.resume, overwrite=args.overwrite, redo=args.redo,
                            progress=not args.no_progress)
    except (ConfigError, CheckpointError, TrackingError, BackendError, RecordError) as exc:
        fail(PROG, str(exc))
    except Stopped as exc:
        print(f"{PROG}: stopped in search {exc.name}; its checkpoint keeps every result: --resume continues the "
              "campaign", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt as exc:
        print(f"{PROG}: interrupted; finished stages are kept: --resume continues the campaign", file=sys.stderr)
        return interrupted_code(exc)
    print(f"\ncampaign {campaign.name}: done; results in {campaign.out}/README.md\n")
    print(text.split("\n## ", 2)[0])
    return 0


def _show(campaign: Campaign) -> None:
    """What ``--check`` prints: the searches, the funnel and the transfer setups the file describes."""
    print(f"campaign {campaign.name}: {len(campaign.searches)} searches, results in {campaign.out}, state in "
          f"{campaign.folder}, MLflow experiment {campaign.experiment}")
    for cfg in campaign.searches:
        d = flatten(cfg.to_dict())
        print(f"  {cfg.name}: seed {cfg.seed}, {cfg.budget.max_evals} candidates, task "
              f"{d['task.dataset']} {d['task.model.arch']} {d['task.model.widths']} {d['task.epochs']} epochs")
    f = campaign.funnel
    print(f"  funnel: top {f.top} pooled, setups {', '.join(f.setups)}, {f.seeds} fresh seeds, controls "
          f"{', '.join(f.controls) or 'the search standard ones'}")
    for t in campaign.transfer:
        print(f"  transfer {t.label}: {t.description}")


if __name__ == "__main__":
    sys.exit(main())
