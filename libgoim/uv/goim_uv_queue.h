/*
 * An intrusive circular doubly linked list, NGINX's ngx_queue_t in
 * miniature: embed a goim_queue_t in a struct, link it, and get the struct
 * back with goim_queue_data().  The sentinel is a goim_queue_t of its own.
 */

#ifndef GOIM_UV_QUEUE_H
#define GOIM_UV_QUEUE_H

#include <stddef.h>

typedef struct goim_queue_s  goim_queue_t;

struct goim_queue_s {
    goim_queue_t  *prev;
    goim_queue_t  *next;
};

#define goim_queue_init(q)                                                    \
    (q)->prev = q;                                                            \
    (q)->next = q

#define goim_queue_empty(h)  ((h) == (h)->prev)

#define goim_queue_head(h)   (h)->next
#define goim_queue_last(h)   (h)->prev
#define goim_queue_next(q)   (q)->next

#define goim_queue_insert_tail(h, x)                                          \
    (x)->prev = (h)->prev;                                                    \
    (x)->prev->next = x;                                                      \
    (x)->next = h;                                                            \
    (h)->prev = x

#define goim_queue_insert_after(q, x)                                         \
    (x)->next = (q)->next;                                                    \
    (x)->next->prev = x;                                                      \
    (x)->prev = q;                                                            \
    (q)->next = x

#define goim_queue_remove(x)                                                  \
    (x)->next->prev = (x)->prev;                                              \
    (x)->prev->next = (x)->next;                                              \
    (x)->prev = x;                                                            \
    (x)->next = x

/* moves every element of h to the tail of n; h ends up empty */
#define goim_queue_move(h, n)                                                 \
    if (!goim_queue_empty(h)) {                                               \
        (h)->next->prev = (n)->prev;                                          \
        (n)->prev->next = (h)->next;                                          \
        (h)->prev->next = n;                                                  \
        (n)->prev = (h)->prev;                                                \
        goim_queue_init(h);                                                   \
    }

#define goim_queue_data(q, type, link)                                        \
    ((type *) ((char *) (q) - offsetof(type, link)))

#endif /* GOIM_UV_QUEUE_H */
