/*
 * Baseline for scripts/bench_glove.py: GloVe trained the way the original C tool trains it
 * (Pennington, Socher and Manning 2014), so that our vectorised trainer is measured against the
 * classic algorithm in the same run, on the same co-occurrences, on the same machine.
 *
 * One stochastic AdaGrad step per co-occurrence entry ("Hogwild": threads share the parameters
 * without locks), entries shuffled once, each thread sweeping its own contiguous share.
 * Parameters start uniform in [-0.5, 0.5) / dim, squared-gradient sums start at 1, and the
 * learning rate is folded into the gradient before it is accumulated, as the original does.
 * The cost printed per iteration is the mean over entries of 0.5 * f(x) * (w.c + b + b~ - log x)^2.
 *
 * Input: a binary file of records {int32 row, int32 col, float64 count}, the full symmetric
 * matrix. Output: one line per iteration, "iter COST SECONDS", then the vectors (w + c) as raw
 * float64 to the output file if one is given.
 *
 * Build: cc -O3 -march=native -pthread -o glove_reference glove_reference.c -lm
 * Run:   glove_reference COOC VOCAB DIM ITERS THREADS X_MAX ETA SEED [OUT]
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    int32_t row, col;
    double count;
} Entry;

static Entry *entries;
static long n_entries;
static int dim;
static double x_max, eta, alpha = 0.75;
static double *params, *gradsq; /* 2 * vocab rows of (dim + 1): vector then bias */

typedef struct {
    long begin, end;
    double cost;
} Share;

static void *train_share(void *arg) {
    Share *share = arg;
    share->cost = 0;
    for (long e = share->begin; e < share->end; e++) {
        double *w = params + (long)entries[e].row * 2 * (dim + 1);
        double *c = params + ((long)entries[e].col * 2 + 1) * (dim + 1);
        double *gw = gradsq + (w - params), *gc = gradsq + (c - params);
        double diff = w[dim] + c[dim] - log(entries[e].count);
        for (int k = 0; k < dim; k++) diff += w[k] * c[k];
        double weight = entries[e].count > x_max ? 1.0 : pow(entries[e].count / x_max, alpha);
        double fdiff = weight * diff;
        share->cost += 0.5 * fdiff * diff;
        fdiff *= eta;
        for (int k = 0; k < dim; k++) {
            double step_w = fdiff * c[k], step_c = fdiff * w[k];
            w[k] -= step_w / sqrt(gw[k]);
            c[k] -= step_c / sqrt(gc[k]);
            gw[k] += step_w * step_w;
            gc[k] += step_c * step_c;
        }
        w[dim] -= fdiff / sqrt(gw[dim]);
        c[dim] -= fdiff / sqrt(gc[dim]);
        gw[dim] += fdiff * fdiff;
        gc[dim] += fdiff * fdiff;
    }
    return NULL;
}

static double seconds_since(struct timespec start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s COOC VOCAB DIM ITERS THREADS X_MAX ETA SEED [OUT]\n", argv[0]);
        return 2;
    }
    long vocab = atol(argv[2]);
    dim = atoi(argv[3]);
    int iters = atoi(argv[4]), threads = atoi(argv[5]);
    x_max = atof(argv[6]);
    eta = atof(argv[7]);
    srand((unsigned)atol(argv[8]));

    FILE *in = fopen(argv[1], "rb");
    if (!in) { perror(argv[1]); return 1; }
    fseek(in, 0, SEEK_END);
    n_entries = ftell(in) / (long)sizeof(Entry);
    fseek(in, 0, SEEK_SET);
    entries = malloc(n_entries * sizeof(Entry));
    if (fread(entries, sizeof(Entry), n_entries, in) != (size_t)n_entries) { perror("read"); return 1; }
    fclose(in);

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long e = n_entries - 1; e > 0; e--) { /* one shuffle, as the original's shuffle step */
        long other = (long)(((double)rand() / ((double)RAND_MAX + 1)) * (e + 1));
        Entry tmp = entries[e]; entries[e] = entries[other]; entries[other] = tmp;
    }
    long n_params = vocab * 2 * (dim + 1);
    params = malloc(n_params * sizeof(double));
    gradsq = malloc(n_params * sizeof(double));
    for (long p = 0; p < n_params; p++) {
        params[p] = ((double)rand() / RAND_MAX - 0.5) / dim;
        gradsq[p] = 1.0;
    }

    pthread_t *workers = malloc(threads * sizeof(pthread_t));
    Share *shares = malloc(threads * sizeof(Share));
    for (int it = 1; it <= iters; it++) {
        double cost = 0;
        for (int t = 0; t < threads; t++) {
            shares[t].begin = n_entries * t / threads;
            shares[t].end = n_entries * (t + 1) / threads;
            pthread_create(&workers[t], NULL, train_share, &shares[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(workers[t], NULL);
            cost += shares[t].cost;
        }
        printf("%d %.8f %.3f\n", it, cost / n_entries, seconds_since(start));
        fflush(stdout);
    }

    if (argc > 9) {
        FILE *out = fopen(argv[9], "wb");
        if (!out) { perror(argv[9]); return 1; }
        for (long v = 0; v < vocab; v++) {
            double *w = params + v * 2 * (dim + 1), *c = w + dim + 1;
            for (int k = 0; k < dim; k++) {
                double sum = w[k] + c[k];
                fwrite(&sum, sizeof(double), 1, out);
            }
        }
        fclose(out);
    }
    return 0;
}
