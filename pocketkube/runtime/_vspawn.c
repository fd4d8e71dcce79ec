/* _vspawn: start one container process from the spawn helper without copying the helper.
 *
 * Why C: spawnd.py used to fork() and run the set-up in Python in the child. That child copies
 * the helper's page tables, takes copy-on-write faults as the interpreter runs, and then tears
 * the interpreter's address space down again at exec: measured on the benchmark VM, about two
 * thirds of a container's start-up CPU went there. Here the child shares the helper's memory
 * (clone with CLONE_VM | CLONE_VFORK, as posix_spawn does) and makes only system calls on its
 * own small stack until execve. The helper is suspended until the child has exec'd or failed.
 *
 * The child does what spawnd.py's Python child does, in the same order (see its docstring for
 * the request): parent-death signal, join cgroups, setsid, join the pod's network namespace,
 * a mount and UTS namespace with the pod's mounts, /proc and hostname (the mount namespace
 * copied from a template without the host's netns pins, where the helper has one), then the working
 * directory, stdio, and execve along the candidate paths. Errors go to `err_fd` as
 * "<Python exception name>: <message>" (the text spawnd.py's child wrote), then exit 127.
 * Nothing here may touch Python objects, malloc or locks once the child runs: everything it
 * needs is converted to C beforehand.
 */

#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define CHILD_STACK (256 * 1024)
#define PATH_MAX_LEN 4096

typedef struct {
    const char *source, *target;
    int read_only, is_dir;
} mount_spec;

typedef struct {
    char **argv, **envp, **paths, **cgroups;
    const char *cwd, *hostname, *hosts;
    int stdin_fd, stdout_fd, stderr_fd, err_fd, netns_fd, mnt_template;
    int setsid, newns, mount_proc;
    pid_t helper_pid;            /* 0: in a new PID namespace, where getppid() says 0 */
    mount_spec *mounts;
    Py_ssize_t n_mounts;
    sigset_t old_mask;
} request;

/* ---- the child: system calls only ---- */

static size_t str_len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

static void put(char *buf, size_t *at, size_t cap, const char *s) {
    while (*s && *at + 1 < cap) buf[(*at)++] = *s++;
}

static const char *error_name(int err) {
    switch (err) {
    case ENOENT: return "FileNotFoundError";
    case ENOTDIR: return "NotADirectoryError";
    case EISDIR: return "IsADirectoryError";
    case EEXIST: return "FileExistsError";
    case EACCES: case EPERM: return "PermissionError";
    default: return "OSError";
    }
}

static const char *describe(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *d = strerrordesc_np(err);     /* a constant string: no locale, no buffer */
    return d ? d : "Unknown error";
#else
    return strerror(err);
#endif
}

/* Report "Name: [what: ]description" on err_fd (the parts of `what` are concatenated) and
 * exit 127. */
static void fail(const request *r, int err, const char *w1, const char *w2, const char *w3,
                 const char *w4) {
    char buf[4096];
    size_t at = 0;
    put(buf, &at, sizeof buf, error_name(err));
    put(buf, &at, sizeof buf, ": ");
    if (w1) {
        put(buf, &at, sizeof buf, w1);
        if (w2) put(buf, &at, sizeof buf, w2);
        if (w3) put(buf, &at, sizeof buf, w3);
        if (w4) put(buf, &at, sizeof buf, w4);
        put(buf, &at, sizeof buf, ": ");
    }
    put(buf, &at, sizeof buf, describe(err));
    ssize_t ignored = write(r->err_fd, buf, at);
    (void)ignored;
    _exit(127);
}

/* mkdir -p, as os.makedirs(path, exist_ok=True) */
static int make_dirs(const char *path) {
    char buf[PATH_MAX_LEN];
    size_t n = str_len(path);
    if (n == 0 || n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

static int parent_dir(const char *path, char *out, size_t cap) {
    size_t n = str_len(path);
    while (n > 1 && path[n - 1] != '/') n--;
    if (n > 1) n--;                    /* drop the slash, except for "/" itself */
    if (n + 1 > cap) { errno = ENAMETOOLONG; return -1; }
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

static void mount_namespace(const request *r) {
    /* A copy of the template (see mount_template) rather than of the host's namespace: the
     * host's holds every pod's netns pin, and copying them, then detaching them, was most
     * of a container's start in a burst. */
    if (r->mnt_template >= 0 && setns(r->mnt_template, CLONE_NEWNS) != 0)
        fail(r, errno, "setns (mount namespace template)", NULL, NULL, NULL);
    if (unshare(CLONE_NEWNS | (r->hostname ? CLONE_NEWUTS : 0)) != 0)
        fail(r, errno, "unshare", NULL, NULL, NULL);
    /* slave: our mounts stay private, while unmounts on the host still reach us */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
        fail(r, errno, "mount b'/'", NULL, NULL, NULL);
    if (r->hostname) {
        size_t n = str_len(r->hostname);
        if (sethostname(r->hostname, n > 64 ? 64 : n) != 0)
            fail(r, errno, "sethostname", NULL, NULL, NULL);
    }
    if (r->mount_proc && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        fail(r, errno, "mount b'/proc'", NULL, NULL, NULL);
    /* other pods' netns pins are not ours to hold (they would keep those netns alive);
     * a template has none */
    if (r->mnt_template < 0)
        umount2("/run/netns", MNT_DETACH);
    for (Py_ssize_t i = 0; i < r->n_mounts; i++) {
        const mount_spec *m = &r->mounts[i];
        struct stat st;
        if (lstat(m->target, &st) != 0) {     /* inside an earlier volume: create it there */
            if (m->is_dir) {
                if (make_dirs(m->target) != 0) fail(r, errno, "makedirs ", m->target, NULL, NULL);
            } else {
                char dir[PATH_MAX_LEN];
                if (parent_dir(m->target, dir, sizeof dir) != 0 || make_dirs(dir) != 0)
                    fail(r, errno, "makedirs ", m->target, NULL, NULL);
                int fd = open(m->target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0) fail(r, errno, "create ", m->target, NULL, NULL);
                close(fd);
            }
        }
        if (mount(m->source, m->target, NULL, MS_BIND | MS_REC, NULL) != 0 ||
            (m->read_only && mount(NULL, m->target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0))
            fail(r, errno, "mount ", m->source, " on ", m->target);
    }
    if (r->hosts && mount(r->hosts, "/etc/hosts", NULL, MS_BIND, NULL) != 0)
        fail(r, errno, "mount b'/etc/hosts'", NULL, NULL, NULL);
    struct stat st;
    if (stat(r->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {    /* the kubelet's runtimes create it */
        if (make_dirs(r->cwd) != 0) fail(r, errno, "makedirs ", r->cwd, NULL, NULL);
    }
}

static void close_from(int lo, int hi) {
    if (lo > hi) return;
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (long fd = lo; fd <= hi && fd < max; fd++) close((int)fd);
}

static int child(void *arg) {
    request *r = arg;
    /* Python's handlers live in memory we share with the helper: back to defaults first
     * (signals are blocked until just before exec). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sigaction(sig, NULL, &old) != 0) continue;
        /* handlers, and what the helper ignores (SIGPIPE, SIGXFSZ, SIGINT): programs start
         * with every signal at its default, as under a container runtime */
        if (old.sa_handler != SIG_DFL)
            sigaction(sig, &dfl, NULL);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        fail(r, errno, "prctl(PR_SET_PDEATHSIG)", NULL, NULL, NULL);
    if (r->helper_pid && getppid() != r->helper_pid) _exit(137);   /* the helper died first */
    for (char **p = r->cgroups; *p; p++) {
        int fd = open(*p, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) fail(r, errno, NULL, NULL, NULL, NULL);
        close(fd);
    }
    if (r->setsid && setsid() < 0) fail(r, errno, NULL, NULL, NULL, NULL);
    if (r->netns_fd >= 0 && setns(r->netns_fd, CLONE_NEWNET) != 0)
        fail(r, errno, "setns", NULL, NULL, NULL);
    if (r->newns) mount_namespace(r);
    if (chdir(r->cwd) != 0) fail(r, errno, NULL, NULL, NULL, NULL);
    if (dup2(r->stdin_fd, 0) < 0 || dup2(r->stdout_fd, 1) < 0 || dup2(r->stderr_fd, 2) < 0)
        fail(r, errno, NULL, NULL, NULL, NULL);
    close_from(3, r->err_fd - 1);
    close_from(r->err_fd + 1, 0x7fffffff);
    sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
    int error = 0;
    for (char **p = r->paths; *p; p++) {
        execve(*p, r->argv, r->envp);
        if (errno == ENOENT || errno == ENOTDIR) {
            if (!error) error = errno;
        } else if (errno == EACCES) {
            error = errno;
        } else {
            error = errno;
            break;
        }
    }
    fail(r, error ? error : ENOENT, NULL, NULL, NULL, NULL);
    return 127;
}

/* ---- the helper's side: Python objects to C, then clone ---- */

static char **str_array(PyObject *seq, PyObject **keep, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **out = PyMem_Calloc(n + 1, sizeof(char *));
    if (!out) { Py_DECREF(fast); PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: bytes expected", what);
            PyMem_Free(out); Py_DECREF(fast); return NULL;
        }
        out[i] = PyBytes_AS_STRING(item);
    }
    *keep = fast;      /* the bytes stay alive while `fast` does */
    return out;
}

static const char *opt_bytes(PyObject *o) {
    return o == Py_None ? NULL : PyBytes_AsString(o);
}

/* One stack for every child: each is done with it when clone returns (CLONE_VFORK). */
static char *child_stack(void) {
    static void *stack = MAP_FAILED;
    if (stack == MAP_FAILED)
        stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) { PyErr_SetFromErrno(PyExc_OSError); return NULL; }
    return (char *)stack + CHILD_STACK;
}

typedef struct { int fd, err; } template_result;

static int template_child(void *arg) {
    template_result *t = arg;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
        t->err = errno;
        _exit(1);
    }
    umount2("/run/netns", MNT_DETACH);
    t->fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);     /* into the helper's fd table */
    if (t->fd < 0) t->err = errno;
    _exit(0);
}

/* A mount namespace like the helper's, with "/" a slave of it and without /run/netns (the
 * netns pins): what each container's namespace is copied from. The child that makes it
 * shares the helper's file table (CLONE_FILES), so the fd it opens on its namespace keeps
 * the namespace after the child has exited. */
static PyObject *mount_template(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    template_result t = {-1, 0};
    char *top = child_stack();
    if (!top) return NULL;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(template_child, top, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &t);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) { errno = err; return PyErr_SetFromErrno(PyExc_OSError); }
    waitpid(pid, NULL, 0);
    if (t.fd < 0) { errno = t.err; return PyErr_SetFromErrno(PyExc_OSError); }
    return PyLong_FromLong(t.fd);
}

static PyObject *vspawn(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *argv_o, *env_o, *paths_o, *cgroups_o, *mounts_o, *hostname_o, *hosts_o;
    const char *cwd;
    request r;
    memset(&r, 0, sizeof r);
    int helper_pid;
    if (!PyArg_ParseTuple(args, "OOOyiiiiOpipOOpOii", &argv_o, &env_o, &paths_o, &cwd,
                          &r.stdin_fd, &r.stdout_fd, &r.stderr_fd, &r.err_fd, &cgroups_o,
                          &r.setsid, &r.netns_fd, &r.newns, &hostname_o, &hosts_o,
                          &r.mount_proc, &mounts_o, &helper_pid, &r.mnt_template))
        return NULL;
    r.cwd = cwd;
    r.helper_pid = helper_pid;
    PyObject *keep[4] = {NULL, NULL, NULL, NULL}, *mounts_fast = NULL;
    PyObject *result = NULL;
    if (!(r.argv = str_array(argv_o, &keep[0], "argv")) ||
        !(r.envp = str_array(env_o, &keep[1], "env")) ||
        !(r.paths = str_array(paths_o, &keep[2], "paths")) ||
        !(r.cgroups = str_array(cgroups_o, &keep[3], "cgroups")))
        goto done;
    r.hostname = opt_bytes(hostname_o);
    r.hosts = opt_bytes(hosts_o);
    if (PyErr_Occurred()) goto done;
    mounts_fast = PySequence_Fast(mounts_o, "mounts");
    if (!mounts_fast) goto done;
    r.n_mounts = PySequence_Fast_GET_SIZE(mounts_fast);
    r.mounts = PyMem_Calloc(r.n_mounts + 1, sizeof(mount_spec));
    if (!r.mounts) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < r.n_mounts; i++) {
        PyObject *m = PySequence_Fast_GET_ITEM(mounts_fast, i);
        if (!PyArg_ParseTuple(m, "yypp", &r.mounts[i].source, &r.mounts[i].target,
                              &r.mounts[i].read_only, &r.mounts[i].is_dir))
            goto done;
    }
    char *top = child_stack();
    if (!top) goto done;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &r.old_mask);
    pid_t pid = clone(child, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &r);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &r.old_mask, NULL);
    if (pid < 0) { errno = err; PyErr_SetFromErrno(PyExc_OSError); goto done; }
    result = PyLong_FromLong(pid);
done:
    PyMem_Free(r.argv); PyMem_Free(r.envp); PyMem_Free(r.paths); PyMem_Free(r.cgroups);
    PyMem_Free(r.mounts);
    for (int i = 0; i < 4; i++) Py_XDECREF(keep[i]);
    Py_XDECREF(mounts_fast);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", vspawn, METH_VARARGS,
     "spawn(argv, env, paths, cwd, stdin, stdout, stderr, err_fd, cgroups, setsid, netns_fd, "
     "newns, hostname, hosts, mount_proc, mounts, helper_pid, mnt_template) -> pid: see spawnd.py"},
    {"mount_template", mount_template, METH_NOARGS,
     "mount_template() -> fd of a mount namespace to copy containers' from: see spawnd.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_vspawn", NULL, -1, methods};

PyMODINIT_FUNC PyInit__vspawn(void) { return PyModule_Create(&module); }
