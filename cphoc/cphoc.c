/*
 * cphoc: PHOC descriptors (pyramidal histograms of characters) of strings.
 *
 * The 604-dimension layout of Lluis Gomez's cphoc (single-shot-str, TextTopicNet), so vectors
 * are interchangeable with it:
 *   - unigrams "a".."z", "0".."9" (36) at levels 2, 3, 4, 5: level L starts at
 *     36 * (sum of the levels before it) and holds 36 slots per region:
 *     index = level_offset + region * 36 + unigram;                     (504 dimensions)
 *   - the 50 most common English bigrams at level 2:
 *     index = 504 + region * 50 + bigram.                               (100 dimensions)
 * Character k of an n-character string occupies [k/n, (k+1)/n], a bigram starting at k occupies
 * [k/n, (k+2)/n], region r of level L is [r/L, (r+1)/L]. An n-gram belongs to a region when at
 * least half of it lies inside. Entries are 0 or 1.
 *
 * Like the reference, the overlap ratio is computed in single precision. This matters only when
 * a region boundary falls exactly on the middle of an n-gram (ratio exactly 1/2): rounding then
 * decides, e.g. the middle "l" of "hello" lands in region 1 of level 2 only. Doing the same
 * arithmetic keeps us bit-for-bit equal to the reference.
 *
 * Where we differ from the reference (which rejects such input with an error): positions are
 * Unicode code points, ASCII capitals are lower-cased first, and any other character (accents,
 * punctuation, spaces, other scripts) still takes its position but sets nothing.
 *
 * The part above the Python wrapper is plain C (no Python types) and never exits the process.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CPHOC_UNIGRAM_COUNT 36
#define CPHOC_BIGRAM_COUNT 50
#define CPHOC_LEVEL_COUNT 4
#define CPHOC_BIGRAM_LEVEL 2
#define CPHOC_BIGRAM_OFFSET (CPHOC_UNIGRAM_COUNT * (2 + 3 + 4 + 5))
#define CPHOC_DIM (CPHOC_BIGRAM_OFFSET + CPHOC_BIGRAM_COUNT * CPHOC_BIGRAM_LEVEL)

static const char CPHOC_UNIGRAMS[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const int CPHOC_LEVELS[CPHOC_LEVEL_COUNT] = {2, 3, 4, 5};
static const char CPHOC_BIGRAMS[CPHOC_BIGRAM_COUNT][3] = {
    "th", "he", "in", "er", "an", "re", "es", "on", "st", "nt",
    "en", "at", "ed", "nd", "to", "or", "ea", "ti", "ar", "te",
    "ng", "al", "it", "as", "is", "ha", "et", "se", "ou", "of",
    "le", "sa", "ve", "ro", "ra", "ri", "hi", "ne", "me", "de",
    "co", "ta", "ec", "si", "ll", "so", "na", "li", "la", "el",
};

/* Index of a code point in CPHOC_UNIGRAMS after ASCII lower-casing, or -1. */
static int unigram_index(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return (int)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (int)(c - 'a');
    if (c >= '0' && c <= '9')
        return 26 + (int)(c - '0');
    return -1;
}

/* Index of the bigram made of two unigram indices in CPHOC_BIGRAMS, or -1. */
static int bigram_index(int first, int second)
{
    if (first < 0 || second < 0)
        return -1;
    char a = CPHOC_UNIGRAMS[first], b = CPHOC_UNIGRAMS[second];
    for (int i = 0; i < CPHOC_BIGRAM_COUNT; i++)
        if (CPHOC_BIGRAMS[i][0] == a && CPHOC_BIGRAMS[i][1] == b)
            return i;
    return -1;
}

/*
 * Whether positions [first, last) of a string of `length` characters lie at least half inside
 * region `region` of `level`. Every step is rounded to float, as in the reference.
 */
static int occupies(size_t first, size_t last, size_t length, int level, int region)
{
    const float start = (float)first / (float)length;
    const float end = (float)last / (float)length;
    const float region_start = (float)region / (float)level;
    const float region_end = (float)(region + 1) / (float)level;
    const float low = start > region_start ? start : region_start;
    const float high = end < region_end ? end : region_end;
    const float share = (float)(high - low) / (float)(end - start);
    return share >= 0.5f; /* false for NaN too (positions indistinguishable in float) */
}

/*
 * The PHOC of `length` code points into out[CPHOC_DIM] (overwritten). Any input is valid.
 */
void cphoc_build(const uint32_t *text, size_t length, float *out)
{
    memset(out, 0, CPHOC_DIM * sizeof(float));
    int previous = -1; /* unigram index of text[k - 1] */
    for (size_t k = 0; k < length; k++) {
        const int unigram = unigram_index(text[k]);
        if (unigram >= 0) {
            size_t offset = 0;
            for (int l = 0; l < CPHOC_LEVEL_COUNT; l++) {
                const int level = CPHOC_LEVELS[l];
                for (int region = 0; region < level; region++)
                    if (occupies(k, k + 1, length, level, region))
                        out[offset + (size_t)region * CPHOC_UNIGRAM_COUNT + unigram] = 1.0f;
                offset += (size_t)level * CPHOC_UNIGRAM_COUNT;
            }
        }
        const int bigram = k > 0 ? bigram_index(previous, unigram) : -1;
        if (bigram >= 0) {
            for (int region = 0; region < CPHOC_BIGRAM_LEVEL; region++)
                if (occupies(k - 1, k + 1, length, CPHOC_BIGRAM_LEVEL, region))
                    out[CPHOC_BIGRAM_OFFSET + (size_t)region * CPHOC_BIGRAM_COUNT + bigram] =
                        1.0f;
        }
        previous = unigram;
    }
}

/* ---------------------------------------------------------------- CPython wrapper --------- */

/* Code points of a str handed to cphoc_build; short words stay on the stack. */
#define STACK_CODE_POINTS 64

static int build_from_str(PyObject *word, float *out)
{
    const Py_ssize_t length = PyUnicode_GET_LENGTH(word);
    const int kind = PyUnicode_KIND(word);
    const void *data = PyUnicode_DATA(word);
    uint32_t stack[STACK_CODE_POINTS] = {0}; /* zeroed: quiets GCC's maybe-uninitialized */
    uint32_t *text = stack;
    if (length > STACK_CODE_POINTS) {
        text = PyMem_New(uint32_t, (size_t)length);
        if (text == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < length; i++)
        text[i] = (uint32_t)PyUnicode_READ(kind, data, i);
    cphoc_build(text, (size_t)length, out);
    if (text != stack)
        PyMem_Free(text);
    return 0;
}

static PyObject *py_build_phoc(PyObject *module, PyObject *word)
{
    (void)module;
    if (!PyUnicode_Check(word))
        return PyErr_Format(PyExc_TypeError, "build_phoc() argument must be str, not %.200s",
                            Py_TYPE(word)->tp_name);
    PyObject *result = PyByteArray_FromStringAndSize(NULL, CPHOC_DIM * sizeof(float));
    if (result == NULL)
        return NULL;
    if (build_from_str(word, (float *)PyByteArray_AS_STRING(result)) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *py_build_phocs(PyObject *module, PyObject *words)
{
    (void)module;
    if (PyUnicode_Check(words) || PyBytes_Check(words) || PyByteArray_Check(words))
        return PyErr_Format(PyExc_TypeError,
                            "build_phocs() argument must be a sequence of str, not %.200s",
                            Py_TYPE(words)->tp_name);
    PyObject *items = PySequence_Fast(words, "build_phocs() argument must be a sequence of str");
    if (items == NULL)
        return NULL;
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    const Py_ssize_t row = CPHOC_DIM * (Py_ssize_t)sizeof(float);
    if (count > PY_SSIZE_T_MAX / row) {
        Py_DECREF(items);
        return PyErr_NoMemory();
    }
    PyObject *result = PyByteArray_FromStringAndSize(NULL, count * row);
    if (result == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    float *out = (float *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *word = PySequence_Fast_GET_ITEM(items, i);
        if (!PyUnicode_Check(word)) {
            PyErr_Format(PyExc_TypeError, "build_phocs() item %zd must be str, not %.200s", i,
                         Py_TYPE(word)->tp_name);
            goto fail;
        }
        if (build_from_str(word, out + i * CPHOC_DIM) < 0)
            goto fail;
    }
    Py_DECREF(items);
    return result;
fail:
    Py_DECREF(items);
    Py_DECREF(result);
    return NULL;
}

static PyMethodDef cphoc_methods[] = {
    {"build_phoc", py_build_phoc, METH_O,
     "build_phoc(word: str) -> bytearray\n\n"
     "The PHOC of one word as PHOC_DIM native float32 values."},
    {"build_phocs", py_build_phocs, METH_O,
     "build_phocs(words: Sequence[str]) -> bytearray\n\n"
     "The PHOCs of many words, row after row, as len(words) * PHOC_DIM native float32 values."},
    {NULL, NULL, 0, NULL},
};

static int add_constants(PyObject *module)
{
    PyObject *bigrams = PyTuple_New(CPHOC_BIGRAM_COUNT);
    PyObject *levels = PyTuple_New(CPHOC_LEVEL_COUNT);
    PyObject *bigram_levels = Py_BuildValue("(i)", CPHOC_BIGRAM_LEVEL);
    int status = -1;
    if (bigrams == NULL || levels == NULL || bigram_levels == NULL)
        goto done;
    for (int i = 0; i < CPHOC_BIGRAM_COUNT; i++) {
        PyObject *bigram = PyUnicode_FromString(CPHOC_BIGRAMS[i]);
        if (bigram == NULL)
            goto done;
        PyTuple_SET_ITEM(bigrams, i, bigram);
    }
    for (int i = 0; i < CPHOC_LEVEL_COUNT; i++) {
        PyObject *level = PyLong_FromLong(CPHOC_LEVELS[i]);
        if (level == NULL)
            goto done;
        PyTuple_SET_ITEM(levels, i, level);
    }
    if (PyModule_AddIntConstant(module, "PHOC_DIM", CPHOC_DIM) < 0 ||
        PyModule_AddStringConstant(module, "UNIGRAMS", CPHOC_UNIGRAMS) < 0 ||
        PyModule_AddObjectRef(module, "BIGRAMS", bigrams) < 0 ||
        PyModule_AddObjectRef(module, "UNIGRAM_LEVELS", levels) < 0 ||
        PyModule_AddObjectRef(module, "BIGRAM_LEVELS", bigram_levels) < 0)
        goto done;
    status = 0;
done:
    Py_XDECREF(bigrams);
    Py_XDECREF(levels);
    Py_XDECREF(bigram_levels);
    return status;
}

static PyModuleDef_Slot cphoc_slots[] = {
    {Py_mod_exec, add_constants},
    {0, NULL},
};

static struct PyModuleDef cphoc_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cphoc._cphoc",
    .m_doc = "PHOC descriptors of strings (see cphoc/README.md).",
    .m_size = 0,
    .m_methods = cphoc_methods,
    .m_slots = cphoc_slots,
};

PyMODINIT_FUNC PyInit__cphoc(void)
{
    return PyModuleDef_Init(&cphoc_module);
}
