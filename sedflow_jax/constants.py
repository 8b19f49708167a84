"""Physical constants; the unit is in the name."""

C_AA_PER_S = 2.99792458e18  # speed of light, Angstrom/s
L_SUN_ERG_PER_S = 3.846e33  # PROVABGS/FSPS convention (BC03 itself uses 3.826e33)
MPC_CM = 3.0856775814913673e24  # 1 Mpc in cm (astropy)
PC10_MPC = 1.0e-5  # 10 pc in Mpc
AB_ZP_ERG_PER_S_CM2_HZ = 3631.0e-23  # 3631 Jy
NMGY_PER_MAGGY = 1.0e9
PROVABGS_ZSUN = 0.019  # PROVABGS converts Z to logzsol with this value (not MIST's 0.0142)
BIRTH_CLOUD_LOG10_AGE_YR = 7.0  # FSPS dust_tesc: native SSP ages <= 10 Myr get tau_BC
