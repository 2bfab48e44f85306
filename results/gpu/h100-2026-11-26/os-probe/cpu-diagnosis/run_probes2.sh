set -x
OMP_NUM_THREADS=1 timeout 600 python probe.py kgl_os_lr5e-4_b64_e1 os kglnet 1 64 0.0005 1
OMP_NUM_THREADS=1 timeout 600 python probe.py kgl_os_noaug_b64_e1 os kglnet 1 64 0.005 0
OMP_NUM_THREADS=1 timeout 600 python probe.py hardnet_os_adam1e-2_e5 os hardnet 5 128 0.01 1
