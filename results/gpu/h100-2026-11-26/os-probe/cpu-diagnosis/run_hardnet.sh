set -x
H="optimizer=sgd momentum=0.9 dampening=0.9 weight_decay=0.0001 lr_schedule=linear"
OMP_NUM_THREADS=1 timeout 600 python probe.py hardnet_os_sgd_e6 os hardnet 6 128 0.1 1 $H
OMP_NUM_THREADS=1 timeout 600 python probe.py hardnet_vislwir_sgd_e6 vislwir hardnet 6 128 0.1 1 $H
