"""NaN at any input of the model's public functions returns (NaN, a number or a clear error) and never hangs:
a biomass not known across a logging gap once sent the tube's light integral into an endless loop. The sweep
runs in a child process so that a hang fails the test (naming the call) instead of stopping the suite."""

import math
import multiprocessing
import queue

NAN = math.nan
WAIT_S = 120  # for one call's answer (the first waits for the imports and any compilation)


def calls():
    """(name, function, arguments) with NaN in each float position of a sample call of every public
    scalar function of algaflow.model."""
    from algaflow.model import chemistry, gas, kinetics, optics

    c = chemistry.equilibrium_constants(25.0, 35.0)
    samples = [
        ("chemistry.equilibrium_constants", chemistry.equilibrium_constants, (25.0, 35.0)),
        ("chemistry.alkalinity_and_slope", chemistry.alkalinity_and_slope, (1e-8, 2e-3, c)),
        ("chemistry.solve_hydrogen", chemistry.solve_hydrogen, (2.3e-3, 2e-3, c, 1e-8)),
        ("chemistry.species", chemistry.species, (1e-8, 2e-3, c)),
        ("gas.density_kg_per_l", gas.density_kg_per_l, (35.0,)),
        ("gas.oxygen_saturation_mg_per_l", gas.oxygen_saturation_mg_per_l, (25.0, 35.0, 0.21)),
        ("gas.kla_at_flow", gas.kla_at_flow, (20.0, 5.0, 5.0)),
        ("gas.gas_limited_kla", gas.gas_limited_kla, (20.0, 80.0, 1.2, 50.0)),
        ("gas.gas_molar_flow_mol_per_h", gas.gas_molar_flow_mol_per_h, (5.0,)),
        ("kinetics.light_factor", kinetics.light_factor, (500.0, 100.0, 0.5, 1e-4)),
        ("kinetics.cardinal_factor", kinetics.cardinal_factor, (25.0, 5.0, 28.0, 40.0, 2.0)),
        ("kinetics.oxygen_factor", kinetics.oxygen_factor, (9.0, 30.0, 2.0)),
        ("kinetics.monod_factor", kinetics.monod_factor, (100.0, 10.0)),
        ("kinetics.respiration_rate", kinetics.respiration_rate, (25.0, 0.002, 2.0)),
        ("optics.path_integral", optics.path_integral, (500.0, 400.0, 100.0, 0.5, 1e-4)),
        ("optics.path_average", optics.path_average, (500.0, 3.0, 100.0, 0.5, 1e-4, False)),
        ("optics.tube_average", optics.tube_average, (500.0, 3.0, 100.0, 0.5, 1e-4, False)),
        ("optics.geometry_average", optics.geometry_average, (0, 500.0, 3.0, 100.0, 0.5, 1e-4, False)),
        ("optics.average_growth_factor", optics.average_growth_factor, ("tube", 500.0, 1.0, 0.05, 150.0, 100.0, 0.5)),
        ("optics.average_light", optics.average_light, ("flat_panel", 500.0, 1.0, 0.05, 150.0)),
        ("chemistry.carbonate_system", lambda t, s, a, d: chemistry.carbonate_system(
            temperature_c=t, salinity=s, alkalinity_umol_per_kg=a, dic_umol_per_kg=d), (25.0, 35.0, 2300.0, 2000.0)),
    ]  # fmt: skip
    for name, function, arguments in samples:
        yield name, function, arguments
        for k, value in enumerate(arguments):
            if isinstance(value, float):
                yield f"{name} with NaN at argument {k}", function, (*arguments[:k], NAN, *arguments[k + 1:])


def sweep(done: multiprocessing.Queue) -> None:
    for name, function, arguments in calls():
        done.put(("start", name))
        try:
            function(*arguments)
            outcome = "returned"
        except (ValueError, ArithmeticError) as error:  # a clear refusal is fine
            outcome = f"refused: {error}"
        done.put(("done", name, outcome))
    done.put(("end",))


def test_nan_at_any_input_never_hangs_a_model_function():
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: compiled kernels load from the cache
    done = context.Queue()
    child = context.Process(target=sweep, args=(done,), daemon=True)
    child.start()
    current, finished = None, 0
    try:
        while True:
            try:
                message = done.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no answer for {WAIT_S} s: {current or 'the imports'} hangs") from None
            if message[0] == "start":
                current = message[1]
            elif message[0] == "done":
                finished += 1
            else:
                break
    finally:
        child.kill()
        child.join(10)
    assert finished == sum(1 for _ in calls())
