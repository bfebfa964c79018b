# bnablate — `make help` lists the targets. Two commands set everything up on a fresh machine: `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Real datasets for manual runs and benchmarks (tests never need them): ../shared/data here, ./data by default.
DATA_ROOT ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),data)

# Reproductions: `make repro-NAME` runs conf/sweep/repro_NAME*.yaml into $(RUNS)/repro-NAME and writes its report
# there; SCALE=smoke is the minutes-long form (2 seeds, 1 epoch, 500 training images, a shorter grid) into
# $(RUNS)/repro-NAME-smoke. ../shared/data holds a faithfully re-packed CIFAR-10 whose md5s differ from torchvision's
# list (see ../shared/README.md), so verification is off only when that folder is the data root.
SCALE  ?= full
# the demo decides its 7 BN-vs-none comparisons at 10–12 seeds (docs/reports.md#reading-the-default-sweep)
DEMO_SEEDS ?= 16
RUNS   ?= runs
VERIFY ?= $(if $(wildcard ../shared/data),false,true)
SMOKE  := 'seed=range(2)' train.epochs=1 dataset.train_subset=500
FT_SMOKE := finetune.source_epochs=1 finetune.source_subset=500
RN_SMOKE := dataset.test_subset=null
TF_SMOKE := model.dim=16 model.heads=2
BB_SMOKE := optim.warmup_steps=1
TUNE_SMOKE  = variant=no_bn$(comma)bn_pre_act$(comma)bn_post_act
# a 5-point log grid around the preset's Adam lr 1e-3 (2 points in the smoke form), TUNE_SEEDS tuning seeds per point
# (2: the measured form, 10 runs per variant; TUNE_SEEDS=1 halves the tuning budget)
TUNE_SEEDS ?= 2
TUNE = --tune optim.lr=$(if $(smoke),0.001$(comma)0.01,0.0003$(comma)0.001$(comma)0.003$(comma)0.01$(comma)0.03) --tune-seeds $(TUNE_SEEDS)
comma  := ,
ifeq ($(filter full smoke,$(SCALE)),)
$(error SCALE must be full or smoke, got '$(SCALE)')
endif
smoke   = $(filter smoke,$(SCALE))
out     = $(RUNS)/$(1)$(if $(smoke),-smoke)
# $(call repro,SWEEP_PRESET,OUT_NAME,EXTRA_SMOKE_OVERRIDES,ARGS_AT_EVERY_SCALE)
repro   = BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate sweep sweep=$(1) dataset.verify=$(VERIFY) \
          out_dir=$(call out,$(2)) $(if $(smoke),$(SMOKE) $(3)) $(4)
# $(call until,MAX_SEEDS): add seeds where a comparison is undecided (docs/statistics.md); in the smoke form up to 8,
# the fewest seeds at which a family of up to 109 comparisons can decide (a smaller budget is refused before training)
until   = --until-decided --max-seeds $(if $(smoke),8,$(1))
REPROS  := repro-mlp-cifar10 repro-lenet-fashion repro-lenet-fashion-d2l repro-placement repro-high-lr repro-dropout-order repro-bias \
           repro-batch-size repro-finetune repro-eval-stats repro-resnet repro-bn-batch repro-transformer \
           repro-placement-tuned repro-placement-best

.PHONY: help setup demo test test-full bench bench-busy bench-startup docs clean repro-all repro-resnet-anchor repro-resnet-he repro-bn-batch-step repro-transformer-recipes repro-resnet-paper repro-tune-samplers $(REPROS)

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-20s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install bnablate with torch/torchvision pinned by constraints.txt

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: setup ## the default sweep (BN placement on the embedded digits data), seeds added until decided; prints verdicts
	BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate sweep --until-decided --max-seeds $(DEMO_SEEDS)

# one pytest-xdist worker per core; the preset-expansion tests share a worker (xdist_group) and so their plans
test: setup ## the test suite (no downloads, no real datasets), one worker per core
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

test-full: setup ## every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -q -n auto --dist loadgroup -m "slow or not slow"

bench: setup ## samples/s of bnablate vs the tutorial loop, and a sweep on a busy machine, as ratios (needs real data: DATA_ROOT)
	BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate bench
	$(BIN)/bnablate bench --busy

bench-busy: setup ## one digits sweep two at once and beside a busy loop vs alone, per threads setting (no data needed)
	$(BIN)/bnablate bench --busy

bench-startup: setup ## seconds of `bnablate --help`, a completion keystroke and `bnablate list`, in fresh processes
	$(BIN)/bnablate bench --startup --reps 5

docs: setup ## regenerate docs/configuration.md and bnablate/catalog.json (tests fail when either is stale)
	$(BIN)/python -m bnablate.config_doc docs/configuration.md
	$(BIN)/python -m bnablate.catalog

repro-mlp-cifar10: setup ## MLP 3072-64-32-10 on CIFAR-10, BN vs none (the classic tutorial); SCALE=smoke for minutes
	$(call repro,repro_mlp_cifar10,repro-mlp-cifar10)

repro-lenet-fashion: setup ## the BN + LeNet tutorial as its code runs (max-pool, batch 16): BN vs scratch BN vs none
	$(call repro,repro_lenet_fashion,repro-lenet-fashion)
	$(call repro,repro_lenet_fashion_scratch,repro-lenet-fashion)
	$(call repro,repro_lenet_fashion_b4,repro-lenet-fashion)
	$(BIN)/bnablate report $(call out,repro-lenet-fashion) --baseline bn_pre_sigmoid \
	  --out $(call out,repro-lenet-fashion)/report-vs-bn
	$(BIN)/bnablate report $(call out,repro-lenet-fashion) --baseline bn.conv_beta_init=0.0 \
	  --out $(call out,repro-lenet-fashion)/report-beta-init
	$(BIN)/bnablate report $(call out,repro-lenet-fashion) --baseline bn.momentum=0.1 \
	  --out $(call out,repro-lenet-fashion)/report-momentum
	$(BIN)/bnablate report $(call out,repro-lenet-fashion) --baseline bn.running_var_init=1.0 \
	  --out $(call out,repro-lenet-fashion)/report-var-init

repro-lenet-fashion-d2l: setup ## d2l's LeNet (avg-pool, padding 2, batch 256): BN (torch and from-scratch) vs none
	$(call repro,repro_lenet_fashion_d2l,repro-lenet-fashion-d2l)

repro-placement: setup ## the main study: 6 placements, LeNet (avg- and max-pool) on MNIST/Fashion-MNIST + cnn on CIFAR-10
	$(call repro,repro_placement_lenet,repro-placement,,$(call until,12))
	$(call repro,repro_placement_lenet_maxpool,repro-placement)
	$(call repro,repro_placement_cnn,repro-placement)
	$(BIN)/bnablate report $(call out,repro-placement) --compare baseline --baseline bn_pre_act \
	  --out $(call out,repro-placement)/report-vs-bn_pre_act
	$(BIN)/bnablate report $(call out,repro-placement) --compare baseline --baseline model.pool=avg \
	  --out $(call out,repro-placement)/report-vs-avgpool

repro-high-lr: setup ## SGD lr grid 0.01…2.0 × {no_bn, bn_pre_act, bn_post_act}: the largest lr that trains
	$(call repro,repro_high_lr,repro-high-lr,optim.lr=0.03$(comma)1.0)

repro-dropout-order: setup ## BN→Dropout vs Dropout→BN at p 0.1/0.3/0.5 on the CIFAR-10 cnn, + BN stats re-estimated dropout-off
	$(call repro,repro_dropout_order,repro-dropout-order,variant.dropout_p=0.1$(comma)0.5)
	$(call repro,repro_dropout_order_restats,repro-dropout-order,variant.dropout_p=0.5)
	$(BIN)/bnablate report $(call out,repro-dropout-order) --baseline bn.eval_stats=running \
	  --out $(call out,repro-dropout-order)/report-vs-running

repro-bias: setup ## bias before BN on vs off, paired (expected: no difference, fewer parameters)
	$(call repro,repro_bias,repro-bias)

repro-batch-size: setup ## BN vs GroupNorm vs LayerNorm at batch 2…256 (lr scaled): where BN degrades
	$(call repro,repro_batch_size,repro-batch-size,train.batch_size=2$(comma)64)

repro-finetune: setup ## BN while fine-tuning (trained/γβ frozen/frozen in eval/stats reset): MNIST→F-MNIST, CIFAR 0–4→5–9
	$(call repro,repro_finetune_fashion,repro-finetune,$(FT_SMOKE))
	$(call repro,repro_finetune_fashion_scratch,repro-finetune)
	$(call repro,repro_finetune_cifar,repro-finetune,$(FT_SMOKE))
	$(call repro,repro_finetune_cifar_scratch,repro-finetune)
	$(BIN)/bnablate report $(call out,repro-finetune) --pivot batch_size
	$(BIN)/bnablate report $(call out,repro-finetune) --baseline 'finetune.source=—' \
	  --out $(call out,repro-finetune)/report-vs-scratch

repro-eval-stats: setup ## BN at evaluation: eval() running stats vs no_grad batch stats vs PreciseBN, batch 8 and 128
	$(call repro,repro_eval_stats,repro-eval-stats)

repro-resnet: setup ## ResNet-20 on CIFAR-10: BN in residual blocks ((a)–(e) of He et al. 2016, no norm, SkipInit, zero-γ) + depth 56
	$(call repro,repro_resnet,repro-resnet,$(RN_SMOKE) model.depth=8,$(call until,9))
	$(call repro,repro_resnet_depth,repro-resnet,$(RN_SMOKE) model.depth=8$(comma)14)
	$(BIN)/bnablate report $(call out,repro-resnet) --pivot model.depth --out $(call out,repro-resnet)/report-depth

repro-bn-batch: setup ## BN's normalization batch 2…256 at optimization batch 256 (ghost batches) + Batch Renorm and GN, cnn on CIFAR-10
	$(call repro,repro_bn_batch,repro-bn-batch,$(BB_SMOKE) bn.ghost_batch_size=4$(comma)256)
	$(call repro,repro_bn_batch_renorm,repro-bn-batch,$(BB_SMOKE) bn.ghost_batch_size=4$(comma)256)
	$(call repro,repro_bn_batch_gn,repro-bn-batch,$(BB_SMOKE))
	@# two contrasts declared from Wu & Johnson's claims before any run at 32 or 256 had finished: normalization batch 2
	@# is worse than the whole batch, 32 better; seeds are added to their three cells until both are decided: 3 at once
	@# (6 are the fewest that can decide a family of 2), then a 7th (a normalization-batch-2 run can cost 2–3 others)
	$(call repro,repro_bn_batch,repro-bn-batch,$(BB_SMOKE),bn.ghost_batch_size=$(if $(smoke),4$(comma)256,2$(comma)32$(comma)256) \
	  "sweep.baseline='bn.ghost_batch_size=256'" $(call until,7) --seed-step 3)
	$(BIN)/bnablate report $(call out,repro-bn-batch) --baseline bn.ghost_batch_size=256 \
	  --out $(call out,repro-bn-batch)/report-vs-whole-batch

repro-placement-tuned: setup ## repro-placement's CIFAR-10 cnn with each placement at its own tuned Adam lr, and at one shared lr
	$(call repro,repro_placement_cnn,repro-placement-tuned,$(TUNE_SMOKE),$(TUNE) $(call until,7))
	@# the shared-lr protocol trains the same tuning runs: copy their records so they are found, not retrained
	mkdir -p $(call out,repro-placement-tuned-shared)/tuning
	cp -rn $(call out,repro-placement-tuned)/tuning/records $(call out,repro-placement-tuned-shared)/tuning/
	$(call repro,repro_placement_cnn,repro-placement-tuned-shared,$(TUNE_SMOKE),$(TUNE) --tune-mode shared $(call until,7))

# issue 49's measurement: one placement question tuned four ways into four folders — the grid as before, a log range
# searched at random, by TPE, and by TPE with ASHA pruning, the same trial budget for every variant. LeNet on 10k
# Fashion-MNIST images (3 epochs: ASHA's rungs at epochs 1 and 3) stands in for repro-placement-tuned's CIFAR-10 cnn,
# whose 4 × 240 tuning runs this CPU cannot afford.
SAMPLERS_FORM = dataset=fashion_mnist $(if $(smoke),,dataset.train_subset=10000)
SAMPLERS_TRIALS = $(if $(smoke),3,20)
RANGE_LR = 'optim.lr=tag(log,interval(1e-4,1e-1))'
# all pairs of 6 placements (15 comparisons) can decide from 7 seeds; the smoke form's 3 placements from 6
SAMPLERS_UNTIL = --until-decided --max-seeds $(if $(smoke),6,9)
repro-tune-samplers: setup ## the placement question tuned four ways (grid; a log range by random, TPE, TPE + ASHA): epochs spent, lrs, verdicts
	$(call repro,repro_placement_lenet,repro-tune-samplers/grid,train.epochs=2 $(TUNE_SMOKE),$(SAMPLERS_FORM) $(TUNE) $(SAMPLERS_UNTIL))
	$(call repro,repro_placement_lenet,repro-tune-samplers/random,train.epochs=2 $(TUNE_SMOKE),$(SAMPLERS_FORM) --tune $(RANGE_LR) \
	  --tune-seeds $(TUNE_SEEDS) --tune-sampler random --tune-trials $(SAMPLERS_TRIALS) $(SAMPLERS_UNTIL))
	$(call repro,repro_placement_lenet,repro-tune-samplers/tpe,train.epochs=2 $(TUNE_SMOKE),$(SAMPLERS_FORM) --tune $(RANGE_LR) \
	  --tune-seeds $(TUNE_SEEDS) --tune-sampler tpe --tune-trials $(SAMPLERS_TRIALS) $(SAMPLERS_UNTIL))
	$(call repro,repro_placement_lenet,repro-tune-samplers/tpe-asha,train.epochs=2 $(TUNE_SMOKE),$(SAMPLERS_FORM) --tune $(RANGE_LR) \
	  --tune-seeds $(TUNE_SEEDS) --tune-sampler tpe --tune-pruner asha --tune-trials $(SAMPLERS_TRIALS) $(SAMPLERS_UNTIL))

repro-placement-best: setup ## repro-placement-tuned's question as a race: which placement is best (each at its own tuned lr), with a plan
	@# the same tuning candidates and tuning seeds as repro-placement-tuned: its tuning runs are reused where they exist
	mkdir -p $(call out,repro-placement-best)/tuning
	if [ -d $(call out,repro-placement-tuned)/tuning/records ]; then \
	  cp -rn $(call out,repro-placement-tuned)/tuning/records $(call out,repro-placement-best)/tuning/; fi
	@# Pocock looks at 5, 7 and 9 seeds: a look at 5 can eliminate a variant 3 sds of the differences behind (the
	@# anytime-valid intervals of 15 pairs can decide nothing below 7 seeds)
	$(call repro,repro_placement_cnn,repro-placement-best,$(TUNE_SMOKE),$(TUNE) --goal best --design sequential \
	  --spending pocock --looks $(if $(smoke),2$(comma)3,5$(comma)7$(comma)9))

repro-transformer: setup ## ViT on Fashion-MNIST: Post- vs Pre-LN with/without warm-up at depth 4/12; LN/RMS/DyT/BN/none; Peri-LN
	@# Xiong et al.'s claim is about warm-up: the seeds are added until warm-up 0 vs 100 is decided per depth and design
	$(call repro,repro_transformer,repro-transformer,$(TF_SMOKE) model.depth=2$(comma)3 optim.warmup_steps=0$(comma)2,$(call until,9) \
	  "sweep.baseline='optim.warmup_steps=$(if $(smoke),2,100)'")
	$(call repro,repro_transformer_norms,repro-transformer,$(TF_SMOKE) model.depth=2 optim.warmup_steps=2,$(call until,9))
	$(call repro,repro_transformer_peri,repro-transformer,$(TF_SMOKE) model.depth=2$(comma)3 optim.warmup_steps=2,$(call until,9))
	@# report/: every design vs Pre-LN per depth × warm-up (the folder's most common sweep.baseline would pick warm-up)
	$(BIN)/bnablate report $(call out,repro-transformer) --baseline tf_pre_ln
	$(BIN)/bnablate report $(call out,repro-transformer) --baseline optim.warmup_steps=$(if $(smoke),2,100) \
	  --out $(call out,repro-transformer)/report-warmup

# issue 48's reruns at the papers' recipes, each into a folder of its own (the first runs stay as they were)
repro-resnet-he: setup ## repro-resnet at He et al.'s init (model.init=he): designs (a)–(e), and does ResNet-56 with BN now train at lr 0.1?
	$(call repro,repro_resnet_he,repro-resnet-he,$(RN_SMOKE) model.depth=8,$(call until,9))
	$(call repro,repro_resnet_he_depth,repro-resnet-he,$(RN_SMOKE) model.depth=8$(comma)14)
	$(BIN)/bnablate report $(call out,repro-resnet-he) --pivot model.depth --out $(call out,repro-resnet-he)/report-depth

repro-bn-batch-step: setup ## repro-bn-batch with data-parallel BN's running statistics (bn.ghost_stats=step), evaluated with running and population statistics
	$(call repro,repro_bn_batch_step,repro-bn-batch-step,$(BB_SMOKE) bn.ghost_batch_size=4$(comma)256)
	@# the two contrasts of repro-bn-batch (normalization batch 2 and 32 vs the whole batch), per evaluation
	$(call repro,repro_bn_batch_step,repro-bn-batch-step,$(BB_SMOKE),bn.ghost_batch_size=$(if $(smoke),4$(comma)256,2$(comma)32$(comma)256) \
	  "sweep.baseline='bn.ghost_batch_size=256'" $(call until,7) --seed-step 3)

# each norm's own learning rate: a grid around repro-transformer's 3e-3, the same budget for every variant
TF_TUNE = --tune optim.lr=$(if $(smoke),0.001$(comma)0.003,0.001$(comma)0.002$(comma)0.003$(comma)0.005$(comma)0.01) --tune-seeds $(TUNE_SEEDS)
repro-transformer-recipes: setup ## repro-transformer at the papers' recipes: Xavier for Xiong et al.; timm's init and decay, each norm (and BN-FFN, DyT at α₀ 0.5/1/2) at its own tuned lr
	$(call repro,repro_transformer_xavier,repro-transformer-recipes,$(TF_SMOKE) model.depth=2$(comma)3 optim.warmup_steps=0$(comma)2,$(call until,9) \
	  "sweep.baseline='optim.warmup_steps=$(if $(smoke),2,100)'")
	$(call repro,repro_transformer_timm,repro-transformer-recipes,$(TF_SMOKE) model.depth=2 optim.warmup_steps=2,$(TF_TUNE) $(call until,9))
	$(call repro,repro_transformer_dyt,repro-transformer-recipes,$(TF_SMOKE) model.depth=2 optim.warmup_steps=2,$(TF_TUNE) $(call until,9))
	$(BIN)/bnablate report $(call out,repro-transformer-recipes) --baseline tf_pre_ln

repro-resnet-anchor: setup ## ResNet-20 with He et al.'s recipe (64k iterations; ~2.75 h here, checkpointed): their 8.75 % error, reproduced?
	$(call repro,repro_resnet_anchor,repro-resnet-anchor,'optim.milestones=[2$(comma)3]',)

repro-resnet-paper: setup ## repro-resnet at the paper's scale (ResNet-56/110, all data, 164 epochs, 5 seeds): a GPU's days, not this CPU's
	BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate sweep sweep=repro_resnet_paper dataset.verify=$(VERIFY) \
	  out_dir=$(RUNS)/repro-resnet-paper

repro-all: $(REPROS) ## every reproduction above, in turn (full forms: several hours on 2 cores)

clean: ## remove runs/, build outputs and caches (keeps .venv)
	rm -rf runs build dist .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
