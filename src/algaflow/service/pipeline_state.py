"""The live pipeline's state and its checkpoint (service.pipeline): each unit's track (running totals, pending
harvests and dry weights, saved points for late samples) beside the growth chains' and the decisions' arrays,
saved in the store as one NumPy archive under ``STATE_NAME``.

A checkpoint of another layout (an older release's chains, or decisions kept elsewhere) is not used: the
caller replays the store instead, which gives the same state (service.pipeline_replay).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from algaflow.control.decisions import DecisionState
from algaflow.fusion.online import OnlineGrowthFilter, StateFormatError
from algaflow.fusion.online_rate import OnlineConditions
from algaflow.service.pipeline_second import SecondProbe

log = logging.getLogger("algaflow.pipeline")
STATE_NAME = "live_pipeline"
PIPELINE_FORMAT = 4  # 2: decisions in control.decisions' state arrays; 3: and the dark pairs' drift state;
# 4: the model-informed μ (first-pass chains, condition readings), the probe's stuck run, a second probe
HOUR_US = 3_600_000_000
SNAPSHOT_EVERY_US = 4 * HOUR_US  # a saved point of each unit's chain every 4 hours
SNAPSHOT_TOTALS = ("initial", "initial_sd", "last_biomass", "last_biomass_sd", "harvested", "harvested_variance")


@dataclass(slots=True)
class UnitTrack:
    """One unit's running totals and flags beside its chain."""

    index: int  # in the OnlineGrowthFilter; -1 until the unit has a biomass sensor
    sensor: str | None
    strain: str
    volume_l: float
    last_time_us: int = -(2**62)
    pending_dilution: list[tuple[int, float]] = field(default_factory=list)  # (time_us, fraction)
    pending_dry_weight: list[tuple[int, float]] = field(default_factory=list)  # (time_us, g/L)
    initial: tuple[float, float] | None = None  # X(t₀), its sd
    last_biomass: tuple[float, float] | None = None
    harvested: float = 0.0  # Σ f X(t_h⁻), g/L
    harvested_variance: float = 0.0
    calibration: str | None = None  # file name of the stored curve the chain uses; None: the catalog slope
    decisions: int = -1  # index in the DecisionState
    informed: bool = False  # the reactor model informs μ (the unit reads par_surface): a first-pass chain beside
    first_pass: int = -1  # the first-pass chain's index in the OnlineGrowthFilter (-1: none)
    conditions: int = -1  # index in the OnlineConditions
    last_rate: float = 0.0  # the last μ_model read (1/h), from which the next increment is taken
    stuck: list[float] = field(default_factory=lambda: [float("nan"), 0.0])  # the probe's last reading, its run
    second: SecondProbe | None = None  # a second biomass probe (service.pipeline_second)
    # Saved points: the chains, condition readings and totals after the first sample of each 4 hours, over the last
    # ``late_sample_lag_h`` (service.pipeline_replay.absorb_late); nothing is pending right after a sample.
    snapshots: list[dict] = field(default_factory=list)

    def go_back(self, snapshot: dict) -> None:
        """The totals as they were at ``snapshot`` (the chain is put back by the caller); the harvests and dry
        weights after it are read again from the store."""
        self.last_time_us = int(snapshot["time_us"])
        self.initial = None if snapshot["initial"] is None else tuple(snapshot["initial"])
        self.last_biomass = tuple(snapshot["last_biomass"])
        self.harvested, self.harvested_variance = snapshot["harvested"], snapshot["harvested_variance"]
        self.pending_dilution, self.pending_dry_weight = [], []
        self.snapshots = [s for s in self.snapshots if s["time_us"] <= snapshot["time_us"]]


def state_blob(chains: OnlineGrowthFilter, conditions: OnlineConditions, decisions: DecisionState,
               tracks: dict[str, UnitTrack]) -> bytes:  # fmt: skip
    """The whole state as one archive: the chains' arrays, the decisions' arrays (``decisions_*``), the
    tracks as JSON but for their saved points (``snapshot_*`` arrays: binary, they are most of the state) and
    the layout's version."""
    buffer = io.BytesIO()
    saved_tracks = {unit: asdict(track) for unit, track in tracks.items()}
    for track in saved_tracks.values():
        track["snapshots"] = len(track["snapshots"])
    snapshots = [s for track in tracks.values() for s in track.snapshots]
    width = len(snapshots[0]["chain"]) if snapshots else 0
    chain = np.array([s["chain"] for s in snapshots], dtype=float).reshape(len(snapshots), width)
    totals = np.array([[*(s["initial"] or (np.nan, np.nan)), *s["last_biomass"], s["harvested"],
                        s["harvested_variance"]] for s in snapshots], dtype=float)  # fmt: skip
    arrays = {f"decisions_{name}": values for name, values in decisions.arrays().items()}
    seconds = json.dumps([s.get("second") for s in snapshots]).encode()
    arrays |= {"snapshot_time": np.array([s["time_us"] for s in snapshots], dtype=np.int64), "snapshot_chain": chain,
               "snapshot_second": np.frombuffer(seconds, dtype=np.uint8),
               "snapshot_totals": totals.reshape(len(snapshots), len(SNAPSHOT_TOTALS))}
    np.savez(buffer, tracks=np.frombuffer(json.dumps(saved_tracks).encode(), dtype=np.uint8),
             pipeline_format=np.array([PIPELINE_FORMAT]), **chains.state(), **conditions.state(),
             **arrays)  # fmt: skip
    return buffer.getvalue()


State = tuple[OnlineGrowthFilter, OnlineConditions, DecisionState, dict[str, UnitTrack]]


def read_state(blob: bytes) -> State | None:
    """The chains, condition readings, decision state and tracks of :func:`state_blob`; None for an older
    layout (then everything is replayed). A damaged archive raises."""
    with np.load(io.BytesIO(blob)) as saved:
        try:
            names = (*OnlineGrowthFilter.STATE_ARRAYS, "format")
            chains = OnlineGrowthFilter.from_state({name: saved[name] for name in names if name in saved.files})
        except StateFormatError as error:
            log.warning("pipeline checkpoint not used (%s): replaying every stored reading", error)
            return None
        if "pipeline_format" not in saved.files or int(saved["pipeline_format"][0]) != PIPELINE_FORMAT:
            log.warning("pipeline checkpoint of an older layout (decisions beside the chains) not used: "
                        "replaying every stored reading")
            return None
        conditions = OnlineConditions.from_state({name: saved[name] for name in saved.files
                                                  if name.startswith("conditions_")})  # fmt: skip
        decisions = DecisionState.from_arrays({name.removeprefix("decisions_"): saved[name]
                                               for name in saved.files if name.startswith("decisions_")})
        saved_tracks = json.loads(saved["tracks"].tobytes().decode())
        snapshot_arrays = (saved["snapshot_time"], saved["snapshot_chain"], saved["snapshot_totals"],
                           json.loads(saved["snapshot_second"].tobytes().decode()))  # fmt: skip
    tracks = {}
    first = 0
    for unit, values in saved_tracks.items():
        values["pending_dilution"] = [tuple(p) for p in values["pending_dilution"]]
        values["pending_dry_weight"] = [tuple(p) for p in values["pending_dry_weight"]]
        values["initial"] = None if values["initial"] is None else tuple(values["initial"])
        values["last_biomass"] = None if values["last_biomass"] is None else tuple(values["last_biomass"])
        count, values["snapshots"] = values["snapshots"], []
        for time_us, chain, totals, second in zip(*(a[first : first + count] for a in snapshot_arrays), strict=True):
            initial = None if np.isnan(totals[0]) else (float(totals[0]), float(totals[1]))
            values["snapshots"].append({"time_us": int(time_us), "chain": chain.tolist(), "second": second,
                                        "initial": initial,
                                        "last_biomass": (float(totals[2]), float(totals[3])),
                                        "harvested": float(totals[4]), "harvested_variance": float(totals[5])})
        first += count
        values["second"] = None if values.get("second") is None else SecondProbe.from_dict(values["second"])
        tracks[unit] = UnitTrack(**values)
    return chains, conditions, decisions, tracks
