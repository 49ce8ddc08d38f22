#[doc(hidden)]
async fn __async_upload_put(
    self: Arc<Self>,
    (bucket, object): (String, String),
) -> io::Result<()> {
    self.client.put(&bucket, &object).await
}
#[allow(clippy::used_underscore_binding)]
async fn put(self: Arc<Self>, __arg1: (String, String)) -> io::Result<()> {
    static __ASYNC_UPLOAD_SITE: ::async_upload::__private::Site = ::async_upload::__private::Site::new(
            "store.put",
        )
        .with_backoff(::core::time::Duration::from_millis(250));
    let __call = __ASYNC_UPLOAD_SITE.call_unkeyed();
    ::async_upload::__private::execute_in_place(
            __call,
            (self, __arg1),
            |(__self, __arg1)| Self::__async_upload_put(
                ::core::clone::Clone::clone(&*__self),
                ::core::clone::Clone::clone(&*__arg1),
            ),
            |(__self, __arg1)| -> io::Result<()> { Self::put_blocking(__self, __arg1) },
        )
        .await
}
