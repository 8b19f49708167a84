"""Parameter names and orders, defined once."""

# 12-D physical parameters of the PROVABGS NMF + burst model, in this order.
THETA_NAMES: tuple[str, ...] = (
    "log10_mstar_formed",  # log10 total stellar mass formed (burst included), Msun
    "beta1",  # SFH NMF coefficients, on the simplex
    "beta2",
    "beta3",
    "beta4",
    "f_burst",  # fraction of formed mass in the burst
    "t_burst_gyr",  # lookback time of the burst, Gyr
    "gamma1_zh",  # metallicity-history NMF coefficients, absolute Z units
    "gamma2_zh",
    "tau_bc",  # birth-cloud optical depth at 5500 A
    "tau_ism",  # diffuse-dust optical depth at 5500 A
    "dust_index",  # Kriek & Conroy slope offset from Calzetti
)
N_THETA = len(THETA_NAMES)

# 11-D flow-space parameters (SEDflow's "thetas_unt"): stick-breaking z1..z3 and log10 gammas.
FLOW_NAMES: tuple[str, ...] = (
    "log10_mstar_formed",
    "sb_z1",
    "sb_z2",
    "sb_z3",
    "f_burst",
    "t_burst_gyr",
    "log10_gamma1_zh",
    "log10_gamma2_zh",
    "tau_bc",
    "tau_ism",
    "dust_index",
)
N_FLOW = len(FLOW_NAMES)

# Derived properties returned by ProvabgsModel.properties, in this order.
DERIVED_NAMES: tuple[str, ...] = (
    "log10_mstar_surv",  # surviving stellar mass (stars + remnants), log10 Msun
    "sfr_100myr",  # SFR averaged over the last 100 Myr, Msun/yr
    "sfr_1gyr",  # SFR averaged over the last 1 Gyr, Msun/yr
    "zmet_mw",  # mass-weighted metallicity, absolute Z
    "t_mw_gyr",  # mass-weighted lookback age of the formed mass, Gyr
)
