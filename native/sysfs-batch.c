/*
 * hostdev-sysfs-batch: reads the same few sysfs entries of many PCI functions, for the bounded
 * inventory read of `hostdev list/show/groups` (src/sysfs/batch-reader.ts starts it; the
 * TypeScript executor in src/sysfs/batch-ops.ts does the same ops when this program is missing).
 *
 * Why a program of its own: the reads must run in a process the CLI can abandon (a sysfs read
 * can block in D state while the kernel holds the device lock), and a Node.js child costs 70 to
 * 110 ms to start and twice what C costs per system call, more than lspci needs for its whole run.
 * It knows nothing of hostdev: the CLI names the ops, this program does them and reports errno.
 *
 *   usage: hostdev-sysfs-batch [-s | -f] [-j 2] [-p] OP...   (run with the working directory the entries are in)
 *   -s:    serve: each entry is read as soon as its name has come, and its results written out at
 *          once; the program stays until stdin ends. One such reader serves every read of a
 *          hostdev service (src/sysfs/serving-reader.ts) instead of one process per read.
 *   -f:    each entry's results are written out as soon as they are read, so that the caller can
 *          tell which entry a read the kernel holds up is in (the one whose results do not come).
 *   -j 2:  a forked helper does the second half of the entries at the same time (on a large host,
 *          two cores read faster than one); the output stays in entry order.
 *   -p:    file descriptor 3 is a progress file (src/sysfs/read-progress.ts): before each op the
 *          path it reads is noted in the job's slot (a 32-bit length, then the path; the helper of
 *          -j 2 has the second slot), and the length is 0 once the job is done. A read the kernel
 *          holds up holds this process with it; the caller then reads there which file it was.
 *   OP:    L        readlink of the entry itself
 *          L:NAME   readlink of ENTRY/NAME
 *          R:NAME   the first 4,096 bytes of ENTRY/NAME (one read: a sysfs attribute comes whole)
 *          D:NAME   the names in the directory ENTRY/NAME, each followed by a NUL byte
 *          P:NAME   PCI config space: the 64-byte header, then 8 bytes at each capability in the
 *                   list; as chunks (offset byte, length byte, bytes). Only what is needed: on a
 *                   virtual machine every config dword read traps to the hypervisor.
 *   stdin:  entry names, each ended by a NUL byte (no '/', not "." or "..")
 *   stdout: for each entry, for each OP: errno (0 when it worked) and the length of the data, both
 *           32-bit little-endian, then the data.
 * Exit status 0, or 2 for a bad command line or entry name.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DATA 65536
#define MAX_OPS 64

struct op {
  char kind;
  const char *name; /* "" for the entry itself */
};

static unsigned char data[MAX_DATA];
static size_t data_len;

/* See -p: the progress file mapped, and this job's slot in it (NULL without -p). */
#define PROGRESS_SLOTS 2
#define PROGRESS_SLOT_BYTES 4096
static unsigned char *progress_map;
static unsigned char *progress;

static void set_progress_length(uint32_t length) {
  progress[0] = length & 0xff;
  progress[1] = (length >> 8) & 0xff;
  progress[2] = (length >> 16) & 0xff;
  progress[3] = length >> 24;
}

static void note_progress(const char *path) {
  if (progress == NULL) return;
  size_t length = strlen(path);
  if (length > PROGRESS_SLOT_BYTES - 4) length = PROGRESS_SLOT_BYTES - 4;
  memcpy(progress + 4, path, length);
  set_progress_length((uint32_t)length);
}

static void progress_done(void) {
  if (progress != NULL) set_progress_length(0);
}

static void put_u32(FILE *out, uint32_t value) {
  unsigned char bytes[4] = {value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >> 24};
  fwrite(bytes, 1, 4, out);
}

static void emit(FILE *out, int error) {
  put_u32(out, (uint32_t)error);
  put_u32(out, error == 0 ? (uint32_t)data_len : 0);
  if (error == 0 && data_len > 0) fwrite(data, 1, data_len, out);
}

static int read_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno;
  ssize_t n = pread(fd, data, 4096, 0);
  int error = n < 0 ? errno : 0;
  close(fd);
  data_len = n < 0 ? 0 : (size_t)n;
  return error;
}

static int read_link(const char *path) {
  ssize_t n = readlink(path, (char *)data, MAX_DATA);
  if (n < 0) return errno;
  data_len = (size_t)n;
  return 0;
}

static int list_dir(const char *path) {
  DIR *dir = opendir(path);
  if (dir == NULL) return errno;
  struct dirent *entry;
  errno = 0;
  while ((entry = readdir(dir)) != NULL) {
    const char *name = entry->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    size_t length = strlen(name) + 1;
    if (data_len + length > MAX_DATA) break; /* a sysfs directory holds far fewer names */
    memcpy(data + data_len, name, length);
    data_len += length;
  }
  int error = errno;
  closedir(dir);
  return error;
}

/* One chunk: offset, length, bytes (a short or failed read gives a short or empty chunk). */
static size_t config_chunk(int fd, unsigned offset, unsigned length) {
  unsigned char *chunk = data + data_len;
  ssize_t n = pread(fd, chunk + 2, length, offset);
  if (n < 0) n = 0;
  chunk[0] = (unsigned char)offset;
  chunk[1] = (unsigned char)n;
  data_len += 2 + (size_t)n;
  return (size_t)n;
}

static int read_config(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno;
  const unsigned char *header = data + 2;
  if (config_chunk(fd, 0, 64) == 64) {
    unsigned type = header[0x0e] & 0x7f;
    if (type <= 2 && (header[0x06] & 0x10) != 0) {
      unsigned pointer = header[type == 2 ? 0x14 : 0x34] & 0xfc;
      /* Capabilities live in 0x40..0xff; 48 hops is the most a well-formed list takes. */
      for (int hops = 0; pointer >= 0x40 && hops < 48; hops++) {
        const unsigned char *cap = data + data_len + 2;
        if (config_chunk(fd, pointer, 8) < 2) break;
        pointer = cap[1] & 0xfc;
      }
    }
  }
  close(fd);
  return 0;
}

static int parse_op(const char *spec, struct op *op) {
  if (spec[0] == 'L' && spec[1] == '\0') {
    op->kind = 'L';
    op->name = "";
    return 0;
  }
  if (strchr("LRDP", spec[0]) == NULL || spec[0] == '\0' || spec[1] != ':' || spec[2] == '\0') return -1;
  if (strchr(spec + 2, '/') != NULL) return -1;
  op->kind = spec[0];
  op->name = spec + 2;
  return 0;
}

static int valid_entry(const char *name) {
  return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Every op for one entry, written to `out`. */
static void read_entry(FILE *out, const char *entry, const struct op *ops, int count) {
  static char path[4096 + 256];
  for (int i = 0; i < count; i++) {
    const struct op *op = &ops[i];
    if (op->name[0] == '\0') snprintf(path, sizeof path, "%s", entry);
    else snprintf(path, sizeof path, "%s/%s", entry, op->name);
    data_len = 0;
    note_progress(path);
    int error;
    switch (op->kind) {
      case 'L': error = read_link(path); break;
      case 'R': error = read_file(path); break;
      case 'D': error = list_dir(path); break;
      default: error = read_config(path); break;
    }
    emit(out, error);
  }
}

/* The entries from stdin, each ended by a NUL byte; NULL (and a message) for a bad one. */
static char **read_entries(size_t *count) {
  size_t capacity = 256, used = 0;
  char **entries = malloc(capacity * sizeof *entries);
  char *line = NULL;
  size_t line_capacity = 0;
  while (entries != NULL && getdelim(&line, &line_capacity, '\0', stdin) > 0) {
    if (!valid_entry(line)) {
      fprintf(stderr, "hostdev-sysfs-batch: bad entry name \"%s\"\n", line);
      return NULL;
    }
    if (used == capacity) {
      char **grown = realloc(entries, (capacity *= 2) * sizeof *entries);
      if (grown == NULL) free(entries);
      entries = grown;
    }
    if (entries != NULL && (entries[used++] = strdup(line)) == NULL) {
      free(entries);
      entries = NULL;
    }
  }
  if (entries == NULL) fprintf(stderr, "hostdev-sysfs-batch: out of memory\n");
  free(line);
  *count = used;
  return entries;
}

int main(int argc, char **argv) {
  struct op ops[MAX_OPS];
  int first = 1, jobs = 1, each = 0, serve = 0;
  if (argc > first && strcmp(argv[first], "-s") == 0) {
    serve = 1;
    first += 1;
  }
  if (argc > first && strcmp(argv[first], "-f") == 0) {
    each = 1;
    first += 1;
  }
  if (argc > first + 1 && strcmp(argv[first], "-j") == 0) {
    jobs = atoi(argv[first + 1]) == 2 ? 2 : 1;
    first += 2;
  }
  if (argc > first && strcmp(argv[first], "-p") == 0) {
    first += 1;
    void *map = mmap(NULL, PROGRESS_SLOTS * PROGRESS_SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
    /* Without its progress file the reader still reads: the notes only serve an error message. */
    if (map != MAP_FAILED) progress = progress_map = map;
  }
  int count = argc - first;
  if (count < 1 || count > MAX_OPS) {
    fprintf(stderr, "usage: hostdev-sysfs-batch [-s | -f] [-j 2] [-p] OP... (L, L:NAME, R:NAME, D:NAME, P:NAME); entries on stdin\n");
    return 2;
  }
  for (int i = 0; i < count; i++) {
    if (parse_op(argv[first + i], &ops[i]) != 0) {
      fprintf(stderr, "hostdev-sysfs-batch: bad op \"%s\"\n", argv[first + i]);
      return 2;
    }
  }
  if (serve) {
    char *line = NULL;
    size_t line_capacity = 0;
    while (getdelim(&line, &line_capacity, '\0', stdin) > 0) {
      if (!valid_entry(line)) {
        fprintf(stderr, "hostdev-sysfs-batch: bad entry name \"%s\"\n", line);
        return 2;
      }
      read_entry(stdout, line, ops, count);
      progress_done();
      if (fflush(stdout) != 0) return 1;
    }
    free(line);
    return 0;
  }
  size_t total = 0;
  char **entries = read_entries(&total);
  if (entries == NULL) return 2;
  static char out_buffer[1 << 16];
  setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

  size_t split = total;
  pid_t helper = -1;
  int go[2] = {-1, -1};
  if (jobs == 2 && total >= 2 && pipe(go) == 0) {
    split = total / 2;
    fflush(stdout);
    pid_t parent = getpid();
    helper = fork();
    if (helper == 0) {
      /* The helper: reads the second half into memory, waits until the parent has written the
       * first half, then writes its own. It dies with its parent (a reader killed for a blocked
       * read), and writes nothing unless the parent says its half went out. */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      close(go[1]);
      if (progress_map != NULL) progress = progress_map + PROGRESS_SLOT_BYTES;
      char *buffer = NULL;
      size_t size = 0;
      FILE *memory = open_memstream(&buffer, &size);
      if (memory == NULL) _exit(1);
      for (size_t i = split; i < total; i++) read_entry(memory, entries[i], ops, count);
      progress_done();
      if (fclose(memory) != 0) _exit(1);
      char byte = 0;
      if (read(go[0], &byte, 1) != 1 || byte != 'g') _exit(1);
      _exit(fwrite(buffer, 1, size, stdout) == size && fflush(stdout) == 0 ? 0 : 1);
    }
    close(go[0]);
    if (helper < 0) split = total;
  }
  for (size_t i = 0; i < split; i++) {
    read_entry(stdout, entries[i], ops, count);
    if (each && fflush(stdout) != 0) return 1;
  }
  progress_done();
  if (fflush(stdout) != 0) return 1;
  if (helper > 0) {
    if (write(go[1], "g", 1) != 1) return 1;
    close(go[1]);
    int status = 0;
    if (waitpid(helper, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}
