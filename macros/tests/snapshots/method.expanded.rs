async fn put(self: Arc<Self>, __arg1: (String, String)) -> io::Result<()> {
    static __ASYNC_UPLOAD_SITE: ::async_upload::__private::Site = ::async_upload::__private::Site::new(
            "store.put",
        )
        .with_startup(::async_upload::__private::STARTUP)
        .with_backoff(::core::time::Duration::from_millis(250));
    let __call = __ASYNC_UPLOAD_SITE.call_unkeyed();
    ::async_upload::__private::execute_in_place(
            __call,
            (self, __arg1),
            |(__a0, __a1)| {
                let __a0 = <Arc<Self> as ::core::clone::Clone>::clone(&*__a0);
                let __a1 = <(String, String) as ::core::clone::Clone>::clone(&*__a1);
                async move {
                    let __self = __a0;
                    let (bucket, object) = __a1;
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<
                        io::Result<()>,
                    > {
                        #[allow(unreachable_code)] return __ret;
                    }
                    let __ret: io::Result<()> = {
                        __self.client.put(&bucket, &object).await
                    };
                    #[allow(unreachable_code)] __ret
                }
            },
            |(__a0, __a1)| -> io::Result<()> { Self::put_blocking(__a0, __a1) },
        )
        .await
}
