"""An emotion index of a collection, and search over it: what a SEVLM model says about every image, searchable.

    from sevlm.index.store import EmotionIndex
    from sevlm.index.gallery import write_gallery

    index = EmotionIndex.build(["paintings/"], "index/", model="outputs/sevlm-demo")    # or dataset_path=, split=
    index = EmotionIndex.load("index/")
    hits = index.search(emotions={"awe": 0.6, "sadness": 0.4}, top_k=10)  # an emotion mix
    hits = index.search(id="paintings/storm.jpg")                          # works that feel like this one
    hits = index.search(image="query.jpg", model=model, processor=processor, visual_weight=0.3)
    hits = index.search(text="calm, melancholic", emotion="sadness")       # words, with a filter
    hits.query.unused_words                                                # words that took no part, with suggestions
    index.add(["new-paintings/"], model="outputs/sevlm-demo")              # only new and changed images are computed
    write_gallery(index, hits, "gallery/")                                 # index.html + contact_sheet.png

Per image the index stores (a `datasets.Dataset` on disk): `id` (the file's absolute path, or the dataset's
`painting_id`), `file` with its `file_size` and `file_mtime_ns`, `emotion`, `score`, `scores` (one probability per
`config.emotions`), `explanation`, `vad` (the explanation's VAD profile: the mean of the non-zero rows of the model's
`vad_table` over its tokens; NaN when no token has one), `image_embeds` (the pooled image features the contrastive
head uses) and a small JPEG `thumbnail`. Every prediction comes from the model folder's own `predict_batch`
(`sevlm.loading.predict_function`), the project's one prediction path.

Modules:

    sevlm.index.similarity     the parts of a query, their distances and blend, in plain words
    sevlm.index.query          emotion mixes, filters and words as users write them
    sevlm.index.faiss_indexes  which FAISS index for which size; reading and writing them
    sevlm.index.store          the index on disk (`EmotionIndex`): loading, searching, thumbnails
    sevlm.index.build          building and extending: one writer, unfinished work, bounded memory, the commit
    sevlm.index.gallery        hits for people (HTML cards, galleries, contact sheets) and files (CSV, JSON Lines)

The candidates of a search come from one FAISS index per part and are re-scored exactly; the candidate lists grow
until the threshold algorithm proves that no unseen item can beat the k-th hit (exact with exact indexes).

An image query runs a model, and a model folder's code runs with it: the model is the one the caller names, or,
when asked explicitly (`trust_index_model=True`, `sevlm-search --trust_index_model`), the one the index names.
"""
